"""The TopK SAE as the trainer holds it (`TrainableSae`), with sparse encoder/decoder kernels whose backward
touches only the k active latents per row, instead of a dense (b, n) backward through the encoder. `export`
turns it into the `indexer.sae.TopKSae` that is saved and served."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from indexer.sae import TopKSae, fast_topk


class SparsePattern:
    """Which k latents are active in each of b rows, prepared once per training step for the sparse
    kernels below: a CSR mask (for sampled matmuls) and a latent-major ordering (for scatter-adds)."""

    def __init__(self, indices: torch.Tensor, n: int) -> None:
        """indices (b, k) int64, each row's latents distinct; n is the number of latents."""
        # CSR wants each row's columns ascending; the order of a row's slots carries no meaning here.
        self.indices = indices.sort(dim=1).values
        b, k = self.indices.shape
        self.n = n
        flat = self.indices.reshape(-1)
        self._crow = torch.arange(0, b * k + 1, k, device=flat.device)
        self.order = torch.argsort(flat, stable=True)
        # Where each latent's run starts among the latent-sorted slots. Unlike bincount + cumsum, searchsorted
        # needs no device-to-host sync for its output size, which stalls every training step on a GPU.
        self.offsets = torch.searchsorted(flat[self.order], torch.arange(n, device=flat.device))

    def gather_dot(self, rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """out[i, j] = rows[i] . table[indices[i, j]]. rows (b, d), table (n, d) float32 -> (b, k) float32."""
        b, k = self.indices.shape
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            mask = torch.sparse_csr_tensor(
                self._crow, self.indices.reshape(-1), torch.zeros(b * k, dtype=rows.dtype, device=rows.device),
                (b, self.n), check_invariants=False,
            )
        out = torch.sparse.sampled_addmm(mask, rows, table.t(), beta=0.0)
        return out.values().view(self.indices.shape)

    def scatter_rows(self, weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """out[f] = sum of weights[i, j] * rows[i] over slots with indices[i, j] == f, i.e. sparse(weights)^T @ rows.
        weights (b, k), rows (b, d) float32 -> (n, d) float32."""
        k = self.indices.shape[1]
        # embedding_bag over latent-sorted slots writes each output row once: 4-14x faster than index_add_
        # (batch 256-1024, one core).
        return F.embedding_bag(
            self.order // k,
            rows,
            self.offsets,
            mode="sum",
            per_sample_weights=weights.reshape(-1)[self.order],
        )

    def decode(self, weights: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """out[i] = sum_j weights[i, j] * table[indices[i, j]]. (b, k), (n, d) float32 -> (b, d) float32."""
        return F.embedding_bag(self.indices, table, per_sample_weights=weights, mode="sum")


class _GatherDot(torch.autograd.Function):
    """Differentiable `SparsePattern.gather_dot`: the encoder restricted to the active latents."""

    @staticmethod
    def forward(ctx: Any, rows: torch.Tensor, table: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
        ctx.save_for_backward(rows, table)
        ctx.pattern = pattern
        return pattern.gather_dot(rows, table)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        rows, table = ctx.saved_tensors
        p: SparsePattern = ctx.pattern
        grad = grad.contiguous()
        grad_rows = p.decode(grad, table) if ctx.needs_input_grad[0] else None
        grad_table = p.scatter_rows(grad, rows) if ctx.needs_input_grad[1] else None
        return grad_rows, grad_table, None


class _SparseDecode(torch.autograd.Function):
    """Differentiable `SparsePattern.decode`: the decoder restricted to the active latents."""

    @staticmethod
    def forward(ctx: Any, weights: torch.Tensor, table: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
        ctx.save_for_backward(weights, table)
        ctx.pattern = pattern
        return pattern.decode(weights, table)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        weights, table = ctx.saved_tensors
        p: SparsePattern = ctx.pattern
        grad = grad.contiguous()
        grad_weights = p.gather_dot(grad, table) if ctx.needs_input_grad[0] else None
        grad_table = p.scatter_rows(weights, grad) if ctx.needs_input_grad[1] else None
        return grad_weights, grad_table, None


def sparse_encode(rows: torch.Tensor, enc_t: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
    """Encoder dot products of the active latents, with a sparse backward (grad of enc_t touches only
    active rows). rows (b, d), enc_t (n, d) = W_enc^T float32 -> (b, k) float32, slots as `pattern.indices`."""
    return _GatherDot.apply(rows, enc_t, pattern)


def sparse_decode(weights: torch.Tensor, dec: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
    """Sum of active decoder rows with a sparse backward. weights (b, k), dec (n, d) float32 -> (b, d) float32."""
    return _SparseDecode.apply(weights, dec, pattern)


class TrainableSae:
    """A TopK SAE as the trainer holds it: parameters for centred rows (x - mu), the encoder stored
    transposed (n, d) for row gathers and without the b_dec shift. `export` folds both back into
    `TopKSae`'s (x - b_dec) @ W_enc + b_enc form, which computes the same codes."""

    def __init__(self, d: int, n: int, seed: int, device: torch.device) -> None:
        gen = torch.Generator().manual_seed(seed)
        dec = torch.randn(n, d, generator=gen)
        dec /= dec.norm(dim=1, keepdim=True)
        # Encoder starts as the decoder's transpose: latents begin as matched filters, which trains faster.
        self.enc_t = dec.clone().to(device).requires_grad_()
        self.dec = dec.to(device).requires_grad_()
        self.b_enc = torch.zeros(n, device=device, requires_grad=True)
        self.b_dec = torch.zeros(d, device=device, requires_grad=True)

    def params(self) -> list[torch.Tensor]:
        return [self.enc_t, self.b_enc, self.dec, self.b_dec]

    def snapshot(self) -> list[torch.Tensor]:
        return [p.detach().clone() for p in self.params()]

    def restore(self, snap: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, s in zip(self.params(), snap):
                p.copy_(s)

    @torch.no_grad()
    def export(self, mu: torch.Tensor, k: int) -> TopKSae:
        """The equivalent `TopKSae` (CPU, eval mode) for rows whose mean was `mu` (d,)."""
        n, d = self.dec.shape
        w_enc = self.enc_t.detach().t().contiguous().cpu()
        sae = TopKSae(d, n, k)
        sae.load_state_dict(
            {"W_enc": w_enc, "b_enc": self.b_enc.detach().cpu() + self.b_dec.detach().cpu() @ w_enc,
             "W_dec": self.dec.detach().cpu().clone(), "b_dec": mu.cpu() + self.b_dec.detach().cpu()}
        )
        return sae.eval()

    @torch.no_grad()
    def scores(self, x: torch.Tensor, x_bf16: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-activations (b, n) used only to choose latents: float32 from x (b, d), or bfloat16 from
        x_bf16 (2-2.5x faster where bf16 is native; near-ties may swap, values are recomputed anyway)."""
        if x_bf16 is None:
            return torch.addmm(self.b_enc, x, self.enc_t.t())
        return torch.addmm(self.b_enc.bfloat16(), x_bf16, self.enc_t.bfloat16().t())

    def active_values(self, x: torch.Tensor, pattern: SparsePattern) -> torch.Tensor:
        """ReLU activations of the latents in `pattern`, float32 with sparse gradients. x (b, d) -> (b, k)."""
        bias = self.b_enc.gather(0, pattern.indices.reshape(-1)).view_as(pattern.indices)
        return torch.relu(sparse_encode(x, self.enc_t, pattern) + bias)

    def loss(
        self, x: torch.Tensor, scores: torch.Tensor, k: int, var: float,
        dead: torch.Tensor | None = None, auxk: int = 256, auxk_coef: float = 1 / 32,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised reconstruction loss of centred rows x (b, d) with the top-k latents of `scores`,
        plus AuxK (Gao et al. 2024) over the `dead` (n,) bool latents: their top `auxk` must model
        what the live ones missed. Returns (loss, squared-error sum (a detached 0-d tensor), (n,) bool
        latents that fired); nothing here waits for the device unless `dead` is given."""
        n = self.dec.shape[0]
        pattern = SparsePattern(fast_topk(scores, k)[1], n)
        vals = self.active_values(x, pattern)
        resid = x - (sparse_decode(vals, self.dec, pattern) + self.b_dec)
        # Row sums first: a flat parallel sum's rounding depends on the thread count, row sums' does not.
        sq = (resid**2).sum(dim=1).sum()
        loss = sq / (len(x) * var)
        n_dead = 0 if dead is None else min(auxk, int(dead.sum()))
        if n_dead:
            aux = SparsePattern(fast_topk(scores.masked_fill(~dead, -math.inf), n_dead)[1], n)
            aux_hat = sparse_decode(self.active_values(x, aux), self.dec, aux)
            loss = loss + auxk_coef * ((resid.detach() - aux_hat) ** 2).sum() / (len(x) * var)
        # Counting instead of boolean-mask indexing, which would need the mask's size on the host.
        hits = torch.zeros(n, dtype=torch.int32, device=x.device)
        hits.index_add_(0, pattern.indices.reshape(-1), (vals.detach() > 0).int().reshape(-1))
        return loss, sq.detach(), hits > 0

    @torch.no_grad()
    def nmse(self, xc: torch.Tensor, k: int, chunk: int = 2048) -> float:
        """NMSE of centred rows xc (m, d) float32 with exact float32 top-k, i.e. what `export` computes."""
        err = 0.0
        for s in range(0, len(xc), chunk):
            x = xc[s : s + chunk]
            vals, idx = fast_topk(self.scores(x), k)
            x_hat = F.embedding_bag(idx, self.dec, per_sample_weights=vals.clamp_min(0.0), mode="sum")
            err += float(((x - x_hat - self.b_dec) ** 2).sum(dim=1).sum())
        dev = xc.cpu().numpy().astype(np.float64)
        return err / max(float(np.square(dev - dev.mean(axis=0)).sum()), 1e-12)
