import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InvalidArgument
from indexer.index import build_faiss, load_faiss, save_faiss, search_faiss


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_equals_brute_force(rng):
    docs, queries = unit_rows(rng, 500, 32), unit_rows(rng, 7, 32)
    scores, rows = search_faiss(build_faiss(docs), queries, 10)
    brute = queries @ docs.T
    expected = np.argsort(-brute, axis=1)[:, :10]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), rtol=1e-5, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 80), seed=st.integers(0, 100))
def test_hits_sorted_and_never_padded(n, k, seed):
    rng = np.random.default_rng(seed)
    scores, rows = search_faiss(build_faiss(unit_rows(rng, n, 8)), unit_rows(rng, 1, 8), k)
    assert rows.shape[1] == min(k, n)
    assert (rows >= 0).all()
    assert np.all(np.diff(scores[0]) <= 1e-6)


def test_round_trip_and_unknown_type(tmp_path, rng):
    docs = unit_rows(rng, 50, 8)
    index = build_faiss(docs)
    save_faiss(index, tmp_path / "x.faiss")
    again = load_faiss(tmp_path / "x.faiss")
    np.testing.assert_array_equal(search_faiss(index, docs[:3], 5)[1], search_faiss(again, docs[:3], 5)[1])
    with pytest.raises(InvalidArgument, match="unknown FAISS index type"):
        build_faiss(docs, "NoSuchIndex")
