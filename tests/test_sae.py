"""indexer.sae: fast top-k, sparse kernels against dense references, artifact round trip, encode contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InvalidArgument
from indexer.sae import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    SparsePattern,
    TopKSae,
    TrainableSae,
    encode_array,
    fast_topk,
    load_sae,
    nmse,
    save_sae,
    sparse_decode,
    sparse_encode,
)
from tests.conftest import torch_devices


def _random_sae(d: int = 24, n: int = 96, k: int = 5, seed: int = 0) -> TopKSae:
    sae = TopKSae(d, n, k, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return sae.eval()


def _distinct_indices(b: int, n: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(b)])


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 9),
    n=st.sampled_from([10, 64, 96, 256, 520, 1024]),
    k=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    half=st.booleans(),
)
def test_fast_topk_matches_torch_topk(b: int, n: int, k: int, seed: int, half: bool) -> None:
    k = min(k, n)
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, n, generator=gen)
    if half:
        scores = scores.bfloat16()
    values, indices = fast_topk(scores, k)
    ref_values, ref_indices = scores.topk(k, dim=-1)
    assert torch.equal(values, ref_values)
    # Same values; ties (possible in bfloat16) may pick different but equal-valued latents.
    assert torch.equal(scores.gather(1, indices), values)
    if not half:
        assert torch.equal(indices.sort(1).values, ref_indices.sort(1).values)


def test_fast_topk_grouped_path_is_exercised_and_exact() -> None:
    scores = torch.randn(64, 6144, generator=torch.Generator().manual_seed(3))
    values, indices = fast_topk(scores, 32)
    ref_values, ref_indices = scores.topk(32, dim=-1)
    assert torch.equal(values, ref_values) and torch.equal(indices, ref_indices)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 40), seed=st.integers(0, 1000), scale=st.floats(0.01, 100.0))
def test_encode_gives_k_distinct_nonnegative_sorted_codes(rows: int, seed: int, scale: float) -> None:
    sae = _random_sae(seed=seed % 7)
    x = scale * np.random.default_rng(seed).standard_normal((rows, sae.d)).astype(np.float32)
    idx, val = encode_array(sae, x, batch_size=7)
    assert idx.shape == (rows, sae.k) and val.shape == (rows, sae.k)
    assert idx.dtype == np.int32 and val.dtype == np.float32
    assert (val >= 0).all() and ((idx >= 0) & (idx < sae.n)).all()
    assert all(len(set(r)) == sae.k for r in idx.tolist())
    assert (np.diff(val, axis=1) <= 0).all()


def test_encode_matches_dense_relu_topk_reference() -> None:
    sae = _random_sae()
    x = torch.randn(50, sae.d, generator=torch.Generator().manual_seed(5))
    values, indices = sae.encode(x)
    dense = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    ref_values, _ = dense.topk(sae.k, dim=-1)
    assert torch.allclose(values, ref_values, atol=1e-6)
    assert torch.allclose(dense.gather(1, indices), values, atol=1e-6)


def test_decode_matches_gather_einsum_reference() -> None:
    sae = _random_sae()
    idx = _distinct_indices(12, sae.n, sae.k, seed=1)
    vals = torch.rand(12, sae.k, generator=torch.Generator().manual_seed(2))
    ref = torch.einsum("bk,bkd->bd", vals, sae.W_dec[idx]) + sae.b_dec
    assert torch.allclose(sae.decode(vals, idx), ref, atol=1e-6)


@pytest.mark.parametrize("device", torch_devices())
def test_sparse_pattern_kernels_match_dense_references(device: str) -> None:
    gen = torch.Generator().manual_seed(4)
    b, d, n, k = 11, 7, 30, 4
    idx = _distinct_indices(b, n, k, seed=9).to(device)
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
    idx = _distinct_indices(b, n, k, seed=3)
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
    idx = _distinct_indices(5, 12, 3, seed=2)
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


def test_artifact_round_trips_exactly(tmp_path) -> None:
    sae = _random_sae(seed=2)
    metrics = {"val_nmse": 0.2, "history": [{"epoch": 1, "val_nmse": 0.3}]}
    save_sae(sae, tmp_path, metrics)
    assert (tmp_path / WEIGHTS_FILE).is_file()
    info = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert (info["k"], info["d"], info["n"]) == (sae.k, sae.d, sae.n) and info["metrics"] == metrics
    loaded, info2 = load_sae(tmp_path)
    assert info2 == info
    for name, arr in sae.weights_numpy().items():
        got = loaded.weights_numpy()[name]
        assert got.dtype == np.float32 and np.array_equal(got, arr), name
    assert loaded.W_enc.shape == (sae.d, sae.n) and loaded.W_dec.shape == (sae.n, sae.d)


def test_load_sae_without_files_is_invalid(tmp_path) -> None:
    with pytest.raises(InvalidArgument, match="sae.safetensors"):
        load_sae(tmp_path)


@pytest.mark.parametrize("k, n", [(0, 8), (8, 8), (9, 8)])
def test_topk_sae_rejects_bad_k(k: int, n: int) -> None:
    with pytest.raises(InvalidArgument):
        TopKSae(4, n, k)


def test_nmse_is_zero_for_perfect_and_one_for_the_mean() -> None:
    x = np.random.default_rng(0).standard_normal((20, 3))
    assert nmse(x, x) == 0.0
    assert nmse(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(1.0)
