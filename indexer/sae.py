"""TopK sparse autoencoder (Gao et al. 2024; O'Neill et al. 2024) as a small torch module, plus its
artifact format: `sae.safetensors` (W_enc [d, n], b_enc [n], W_dec [n, d], b_dec [d], float32) and
`sae.json` beside it (k, d, n and training metrics), and an exact two-pass top-k. The form the trainer
holds, with its sparse kernels, is `indexer.sparse_sae`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save
from torch import nn
from torch.nn import functional as F

from indexer.errors import InvalidArgument

WEIGHTS_FILE = "sae.safetensors"
CONFIG_FILE = "sae.json"
TOPK_GROUP = 8
"""Group size of `fast_topk`'s first pass (measured on a 2-core EPYC at n=6144: 8 beats 16, 32 and 64)."""


def fast_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact row-wise top-k, same as `scores.topk(k, dim=-1)` up to ties, about 1.4x faster on CPU
    for (1024, 6144). scores (b, n) float -> values (b, k) sorted descending, indices (b, k) int64.

    Latent j belongs to the strided group j mod (n / g). The k groups with the largest maxima hold
    every top-k entry (an entry outside them is beaten by k distinct group maxima), so a top-k over
    the group maxima and a second over the k * g candidates replace the top-k over all n."""
    b, n = scores.shape
    g = TOPK_GROUP
    m = n // g
    if n % g or m < 2 * k:
        return scores.topk(k, dim=-1)
    group_max = scores.view(b, g, m).amax(dim=1)
    groups = group_max.topk(k, dim=-1, sorted=False).indices
    offsets = torch.arange(g, device=scores.device) * m
    candidates = (groups.unsqueeze(2) + offsets).view(b, k * g)
    values, pos = scores.gather(1, candidates).topk(k, dim=-1)
    return values, candidates.gather(1, pos)


class TopKSae(nn.Module):
    """z = TopK(ReLU((x - b_dec) @ W_enc + b_enc)); x_hat = z @ W_dec + b_dec, with unit-norm decoder rows
    (the trainer renormalises them after every step, train._train_step)."""

    def __init__(self, d: int, n: int, k: int, seed: int = 0) -> None:
        super().__init__()
        if not 0 < k < n:
            raise InvalidArgument(f"k must be between 1 and latents-1, got k={k}, latents={n}")
        self.d, self.n, self.k = d, n, k
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(n, d, generator=gen)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        # Encoder starts as the decoder's transpose: latents begin as matched filters, which trains faster.
        self.W_enc = nn.Parameter(w_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(n))
        self.b_dec = nn.Parameter(torch.zeros(d))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) -> values (b, k) float >= 0 sorted descending, indices (b, k) int64."""
        # ReLU is monotone, so applying it to the k winners only gives the same codes as ReLU-then-top-k.
        values, indices = fast_topk(torch.addmm(self.b_enc, x - self.b_dec, self.W_enc), self.k)
        return values.clamp_min(0.0), indices

    def decode(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Sparse decode: sum of the k active decoder rows. (b, k) float, (b, k) int64 -> (b, d)."""
        # embedding_bag sums the rows without materialising (b, k, d); ~40x faster than gather + einsum.
        return F.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum") + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(b, d) -> x_hat (b, d), values (b, k), indices (b, k)."""
        values, indices = self.encode(x)
        return self.decode(values, indices), values, indices

    def weights_numpy(self) -> dict[str, np.ndarray]:
        """The four tensors as float32 numpy arrays (copies)."""
        return {name: p.detach().cpu().float().numpy().copy() for name, p in self.named_parameters()}


def save_sae(sae: TopKSae, out_dir: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """Write `sae.safetensors` and `sae.json` into `out_dir` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().cpu().float().contiguous() for name, p in sae.named_parameters()}
    # Written as bytes, not by `save_file`, which makes the file readable by its owner alone (mode 0600): an index
    # built by one user could not be served by another.
    (out / WEIGHTS_FILE).write_bytes(save(tensors))
    info = {"k": sae.k, "d": sae.d, "n": sae.n, "metrics": metrics or {}}
    (out / CONFIG_FILE).write_text(json.dumps(info, indent=2))
    return out


def load_sae(sae_dir: str | Path) -> tuple[TopKSae, dict[str, Any]]:
    """Load a SAE written by `save_sae`; returns the module (eval mode, CPU) and its `sae.json`."""
    d = Path(sae_dir)
    if not (d / WEIGHTS_FILE).is_file() or not (d / CONFIG_FILE).is_file():
        raise InvalidArgument(f"{d} holds no {WEIGHTS_FILE} + {CONFIG_FILE}")
    info = json.loads((d / CONFIG_FILE).read_text())
    tensors = load_file(str(d / WEIGHTS_FILE))
    dim, n = tensors["W_enc"].shape
    sae = TopKSae(dim, n, int(info["k"]))
    sae.load_state_dict(tensors)
    return sae.eval(), info


@torch.no_grad()
def encode_array(sae: TopKSae, x: np.ndarray, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Sparse codes of every row: x (m, d) float -> indices (m, k) int32, values (m, k) float32,
    each row sorted by activation, strongest first."""
    idx = np.empty((len(x), sae.k), dtype=np.int32)
    val = np.empty((len(x), sae.k), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        chunk = torch.from_numpy(np.asarray(x[start : start + batch_size], dtype=np.float32))
        v, i = sae.encode(chunk)
        idx[start : start + len(chunk)] = i.numpy()
        val[start : start + len(chunk)] = v.numpy()
    return idx, val


def nmse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Sum of squared errors over the sum of squared deviations from the mean of `x`. (m, d) arrays."""
    x = np.asarray(x, dtype=np.float64)
    err = ((x - x_hat) ** 2).sum()
    return float(err / ((x - x.mean(axis=0)) ** 2).sum())
