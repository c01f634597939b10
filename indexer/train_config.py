"""How to train a TopK SAE (`TrainConfig`), apart from the trainer (indexer/train.py) so that reading or checking
the options loads no torch: the command line builds its parser from these defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from indexer.errors import InvalidArgument

MAX_SEED = 2**32 - 1
"""The largest seed numpy's and torch's generators both take."""
DEVICES = ("auto", "cpu", "cuda")
"""Where to train (and, for a build, embed): 'auto' is cuda when torch sees a GPU."""


# The options a build hands on to the trainer: `BuildConfig` checks them too, in the same words, before the
# minutes of embedding that come ahead of training.
def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(f"seed must be an integer in [0, {MAX_SEED}], got {seed}")


def check_time_budget(seconds: float | None, what: str = "time budget") -> None:
    """`what`: the option's name in the message (the CLI's flag, where it has one)."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise InvalidArgument(f"{what} must be > 0 seconds and finite, got {seconds}")


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise InvalidArgument(f"device must be auto, cpu or cuda, got {device!r}")


@dataclass
class TrainConfig:
    """How to train a TopK SAE on unit-normalised embeddings."""

    k: int = 32
    """Active latents per input."""
    latents: int = 6144
    """Number of latents (dictionary size)."""
    epochs: int | None = None
    """Passes over the training rows (the time budget may stop earlier); None: 8, or more for small
    corpora so that training takes at least `min_steps` optimizer steps."""
    batch_size: int = 256
    """Rows per optimizer step (small corpora get smaller batches, see `min_steps_per_epoch`)."""
    lr: float = 3.2e-3
    """Peak Adam learning rate."""
    warmup: float = 0.02
    """Share of training spent ramping the learning rate up from zero."""
    min_steps_per_epoch: int = 32
    """Small corpora use batches of at most rows / this (and at least 16 rows), so each epoch has steps."""
    min_steps: int = 2000
    """With `epochs` None, small corpora get more epochs so training takes at least this many steps."""
    val_rows: int = 2048
    """At most this many rows (and at most 5%) are held out to pick the best epoch; 0 trains on all rows."""
    bf16_select: bool | None = None
    """Pick the active latents with a bfloat16 matmul (2-2.5x faster than float32 on CPUs with avx512_bf16);
    their values and gradients stay float32. None: when the device has native bfloat16."""
    auxk: int = 256
    """Dead latents used by the AuxK loss to model the residual (0 disables AuxK)."""
    auxk_coef: float = 1 / 32
    """Weight of the AuxK loss."""
    dead_steps: int = 100
    """A latent that has not fired for this many steps counts as dead for AuxK."""
    time_budget: float | None = None
    """Wall-clock seconds for the whole `train_sae` call; the schedule follows the clock and training
    stops before the budget runs out, keeping the best state seen."""
    threads: int | None = None
    """CPU threads while training; None times a few steps with all cores and with one each epoch and
    keeps the faster (results are identical either way)."""
    seed: int = 0
    """Seed for initialisation, validation split and batch order."""
    device: str = "auto"
    """'auto' (cuda when present), 'cpu' or 'cuda'."""
    progress: bool = True
    """Show a progress bar."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes stored with the metrics."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.latents < 2 or self.k >= self.latents:
            raise InvalidArgument(f"need 1 <= k < latents, got k={self.k}, latents={self.latents}")
        check_seed(self.seed)
        for what, value in (("epochs", self.epochs), ("batch size", self.batch_size),
                            ("min_steps_per_epoch", self.min_steps_per_epoch), ("min_steps", self.min_steps)):
            if value is not None and value < 1:
                raise InvalidArgument(f"{what} must be >= 1, got {value}")
        if self.threads is not None and self.threads < 1:
            raise InvalidArgument(f"threads must be >= 1 or None, got {self.threads}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidArgument(f"learning rate must be a positive number, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise InvalidArgument(f"warmup is a share of training in [0, 1), got {self.warmup}")
        if self.val_rows < 0 or self.auxk < 0 or self.auxk_coef < 0 or self.dead_steps < 1:
            raise InvalidArgument("val_rows, auxk and auxk_coef must be >= 0 and dead_steps >= 1")
        check_time_budget(self.time_budget)
        check_device(self.device)
