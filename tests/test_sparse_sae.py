"""indexer.sparse_sae: the sparse kernels and the trainer's loss against dense references and plain autograd,
AuxK, and export to the served SAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from indexer.sae import encode_array, nmse
from indexer.sparse_sae import SparsePattern, TrainableSae, sparse_decode, sparse_encode
from tests.conftest import distinct_indices, torch_devices


@pytest.mark.parametrize("device", torch_devices())
def test_sparse_pattern_kernels_match_dense_references(device: str) -> None:
    gen = torch.Generator().manual_seed(4)
    b, d, n, k = 11, 7, 30, 4
    idx = distinct_indices(b, n, k, seed=9).to(device)
    pattern = SparsePattern(idx, n)
    rows, table = torch.randn(b, d, generator=gen).to(device), torch.randn(n, d, generator=gen).to(device)
    w = torch.randn(b, k, generator=gen).to(device)
    si = pattern.indices
    assert torch.equal(si, idx.sort(1).values)
    assert torch.allclose(pattern.gather_dot(rows, table), (table[si] * rows[:, None, :]).sum(-1), atol=1e-5)
    dense_w = torch.zeros(b, n, device=device).scatter(1, si, w)
    assert torch.allclose(pattern.scatter_rows(w, rows), dense_w.t() @ rows, atol=1e-5)
    assert torch.allclose(pattern.decode(w, table), dense_w @ table, atol=1e-5)


def test_sparse_autograd_matches_plain_torch_gradients() -> None:
    """The custom backward (sampled matmul + latent-sorted embedding_bag) equals autograd on dense ops."""
    gen = torch.Generator().manual_seed(7)
    b, d, n, k = 13, 9, 40, 5
    idx = distinct_indices(b, n, k, seed=3)
    pattern = SparsePattern(idx, n)
    leaves = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((b, d), (n, d), (n, d))]
    target = torch.randn(b, d, generator=gen, dtype=torch.float64)

    def loss(fast: bool) -> list[torch.Tensor]:
        x, enc_t, dec = (t.clone().requires_grad_() for t in leaves)
        if fast:
            out = sparse_decode(torch.relu(sparse_encode(x, enc_t, pattern)), dec, pattern)
        else:
            vals = torch.relu((enc_t[pattern.indices] * x[:, None, :]).sum(-1))
            out = torch.einsum("bk,bkd->bd", vals, dec[pattern.indices])
        ((out - target) ** 2).sum().backward()
        return [t.grad for t in (x, enc_t, dec)]

    for fast_grad, ref_grad in zip(loss(True), loss(False)):
        assert torch.allclose(fast_grad, ref_grad, atol=1e-10)


def test_sparse_kernels_pass_gradcheck() -> None:
    gen = torch.Generator().manual_seed(8)
    idx = distinct_indices(5, 12, 3, seed=2)
    pattern = SparsePattern(idx, 12)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    table = torch.randn(12, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, t: sparse_encode(a, t, pattern), (x, table))
    assert torch.autograd.gradcheck(lambda v, t: sparse_decode(v, t, pattern), (w, table))


@pytest.mark.parametrize("device", torch_devices())
def test_trainable_loss_matches_plain_dense_topk_sae(device: str) -> None:
    """Loss and gradients of `TrainableSae.loss` (sparse kernels) equal a plain dense TopK SAE in torch."""
    torch.manual_seed(0)
    d, n, k, b = 12, 48, 4, 20
    state = TrainableSae(d, n, seed=0, device=torch.device(device))
    with torch.no_grad():
        state.b_enc.normal_(0, 0.1)
        state.b_dec.normal_(0, 0.1)
    x = torch.randn(b, d).to(device)
    scores = torch.addmm(state.b_enc, x, state.enc_t.t()).detach()
    loss, _, fired = state.loss(x, scores, k, var=1.7)
    loss.backward()
    fast = [p.grad.clone() for p in state.params()]
    for p in state.params():
        p.grad = None
    pre = torch.relu(x @ state.enc_t.t() + state.b_enc)
    vals, idx = pre.topk(k, dim=-1)
    x_hat = torch.einsum("bk,bkd->bd", vals, state.dec[idx]) + state.b_dec
    ref_loss = ((x - x_hat) ** 2).sum() / (b * 1.7)
    ref_loss.backward()
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    for g_fast, p in zip(fast, state.params()):
        assert torch.allclose(g_fast, p.grad, atol=1e-6)
    assert int(fired.sum()) == len(torch.unique(idx[vals > 0]))


def test_auxk_adds_a_loss_on_dead_latents() -> None:
    state = TrainableSae(8, 32, seed=0, device=torch.device("cpu"))
    x = torch.randn(16, 8)
    scores = torch.addmm(state.b_enc, x, state.enc_t.t()).detach()
    base, _, _ = state.loss(x, scores, 2, 1.0, auxk=4)
    dead = torch.zeros(32, dtype=torch.bool)
    dead[:10] = True
    with_aux, _, _ = state.loss(x, scores, 2, 1.0, dead=dead, auxk=4)
    assert float(with_aux.detach()) > float(base.detach())
    with_aux.backward()
    assert state.enc_t.grad[:10].abs().sum() > 0  # dead latents get a learning signal


def test_export_reproduces_the_trainer_reconstruction() -> None:
    state = TrainableSae(6, 20, seed=1, device=torch.device("cpu"))
    with torch.no_grad():
        for p in state.params():
            p.add_(0.2 * torch.randn(p.shape))
    mu = torch.randn(6)
    x = torch.randn(30, 6) + mu
    sae = state.export(mu, k=3)
    with torch.no_grad():
        out, _, _ = sae(x)
        pre = torch.relu((x - mu) @ state.enc_t.t() + state.b_enc)
        vals, idx = pre.topk(3, dim=-1)
        ref = torch.einsum("bk,bkd->bd", vals, state.dec[idx]) + state.b_dec + mu
    assert torch.allclose(out, ref, atol=1e-5)


def test_trainable_nmse_and_bf16_scores_agree_with_float32() -> None:
    state = TrainableSae(16, 64, seed=2, device=torch.device("cpu"))
    x = torch.randn(40, 16)
    exact, lowp = state.scores(x), state.scores(x, x.bfloat16())
    assert lowp.dtype == torch.bfloat16 and torch.allclose(lowp.float(), exact, atol=0.05)
    sae = state.export(torch.zeros(16), k=4)
    idx, val = encode_array(sae, x.numpy())
    x_hat = sae.decode(torch.from_numpy(val), torch.from_numpy(idx.astype(np.int64))).detach().numpy()
    assert state.nmse(x, 4) == pytest.approx(nmse(x.numpy(), x_hat), rel=1e-5)
