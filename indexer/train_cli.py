"""`sae-search train-sae`: train a TopK SAE on an .npy of embeddings and write `sae.safetensors` + `sae.json`.
`service.cli` registers the subcommand with `add_train_parser` and turns any
`SaeSearchError` raised here into a one-line error and exit code 1 (2 for a refused option value)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from indexer.errors import BudgetTooShort, InvalidArgument, TrainingDiverged, UsageError
from indexer.manifest import MANIFEST
from indexer.swap import check_can_create
from indexer.train_config import DEVICES, TrainConfig, check_time_budget

log = logging.getLogger(__name__)

SAVE_RESERVE_S = 1.0
"""Seconds of a --time-budget kept back for writing the artifact after training."""


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `train-sae` subcommand; its handler is `run_train`."""
    d = TrainConfig()
    p = subparsers.add_parser(
        "train-sae",
        help="train a TopK sparse autoencoder on an .npy of embeddings",
        description="Train a TopK SAE on every row of an (rows, dim) .npy (float16 or float32) and write "
        "OUT/sae.safetensors and OUT/sae.json.",
    )
    p.add_argument("--embeddings", type=Path, required=True, help="(rows, dim) float .npy file")
    p.add_argument("--out", type=Path, required=True, help="output directory (created if needed)")
    p.add_argument("--k", type=int, default=d.k, help=f"active latents per input (default {d.k})")
    p.add_argument("--latents", type=int, default=d.latents, help=f"dictionary size (default {d.latents})")
    p.add_argument(
        "--time-budget", type=float, default=None,
        help="wall-clock seconds from the start of this subcommand; training follows the clock and stops in time",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the data (default 8; more for small data)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"rows per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak Adam learning rate (default {d.lr})")
    p.add_argument("--device", choices=DEVICES, default=d.device, help="where to train")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=run_train)


def check_sae_out(out: Path) -> None:
    """Refuse an --out the SAE's two files should not be written to: one that cannot be made, one inside an index
    (`manifest.json` in it or a folder above: a served index whose SAE changed would fail its checksums), or a
    folder holding files other than an earlier `train-sae`'s."""
    from indexer.sae import CONFIG_FILE, WEIGHTS_FILE  # torch: loaded by the time a command runs, not at --help

    here = out.resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).is_file():
            raise InvalidArgument(f"--out {out} lies inside the index {folder}; `sae-search build` writes an index's "
                                  "SAE, so give a folder of its own")
    ours = (CONFIG_FILE, WEIGHTS_FILE)
    others = sorted(p.name for p in here.iterdir() if p.name not in ours) if here.is_dir() else []
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise InvalidArgument(f"--out {out} holds other files ({shown}); give a new or empty folder, or one that "
                              "holds only an earlier train-sae's sae.json and sae.safetensors")
    check_can_create(out, f"--out {out}")  # last: it makes (and removes) a folder where the SAE would go


def run_train(args: argparse.Namespace) -> int:
    """Handler of `train-sae`: validate, load, train, save. Returns the exit code (0)."""
    # torch loads here, not when the command line is parsed: `sae-search --help` or `rebuild` need none of it.
    from indexer.precomputed import load_embeddings_file, validate_embeddings
    from indexer.sae import save_sae
    from indexer.train import train_sae

    start = time.perf_counter()
    budget = args.time_budget
    # Building the config first rejects bad k/latents/epochs before the file is even opened.
    try:
        check_time_budget(budget, what="--time-budget")
        cfg = TrainConfig(
            k=args.k, latents=args.latents, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            time_budget=budget, seed=args.seed, device=args.device, progress=not args.no_progress,
        )
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    check_sae_out(args.out)  # before any training: the save comes minutes later
    x = load_embeddings_file(args.embeddings)
    validate_embeddings(x)
    loading = time.perf_counter() - start
    if budget is not None:
        # The budget covers the subcommand, so loading time and the final save come out of it.
        cfg.time_budget = max(budget - loading - SAVE_RESERVE_S, 1e-3)
    log.info("training SAE k=%d latents=%d on %d rows of dim %d from %s", cfg.k, cfg.latents, *x.shape, args.embeddings)
    try:
        result = train_sae(x, cfg)
    except TrainingDiverged as exc:
        raise TrainingDiverged(exc.what, exc.lr, "nothing was written: try a lower --lr") from None
    except BudgetTooShort:
        raise BudgetTooShort(
            f"--time-budget {budget:g} s ran out before the first training step ({loading:.1f} s went to reading "
            f"the embeddings and {SAVE_RESERVE_S:g} s is kept for writing the SAE); give more"
        ) from None
    out = save_sae(result.sae, args.out, result.metrics)
    m = result.metrics
    log.info(
        "wrote %s: %d epochs, %d steps, validation NMSE %s, dead %.2f%%, %.1f s",
        out, m["epochs_run"], m["steps"], m["val_nmse"], 100 * (m["dead_fraction"] or 0.0), time.perf_counter() - start,
    )
    return 0
