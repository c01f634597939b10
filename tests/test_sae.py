"""indexer.sae: fast top-k, encode and decode against dense references, artifact round trip, encode contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InvalidArgument
from indexer.sae import CONFIG_FILE, WEIGHTS_FILE, TopKSae, encode_array, fast_topk, load_sae, nmse, save_sae
from tests.conftest import distinct_indices


def _random_sae(d: int = 24, n: int = 96, k: int = 5, seed: int = 0) -> TopKSae:
    sae = TopKSae(d, n, k, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return sae.eval()


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
    idx = distinct_indices(12, sae.n, sae.k, seed=1)
    vals = torch.rand(12, sae.k, generator=torch.Generator().manual_seed(2))
    ref = torch.einsum("bk,bkd->bd", vals, sae.W_dec[idx]) + sae.b_dec
    assert torch.allclose(sae.decode(vals, idx), ref, atol=1e-6)


def test_artifact_round_trips_exactly(tmp_path) -> None:
    sae = _random_sae(seed=2)
    metrics = {"val_nmse": 0.2, "history": [{"epoch": 1, "val_nmse": 0.3}]}
    save_sae(sae, tmp_path, metrics)
    # The weights are as readable as the config beside them: a server run by another user must load them.
    assert (tmp_path / WEIGHTS_FILE).stat().st_mode == (tmp_path / CONFIG_FILE).stat().st_mode
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
