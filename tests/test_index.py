import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InvalidArgument
from indexer.index import (
    build_faiss, check_factory, code_error, faiss_reason, load_faiss, nearest, save_faiss, search_faiss,
)


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_equals_brute_force(rng):
    docs, queries = unit_rows(rng, 500, 32), unit_rows(rng, 7, 32)
    index = build_faiss(docs, "Flat")
    for q in queries:
        scores, rows = search_faiss(index, q, 10)
        brute = docs @ q
        expected = np.argsort(-brute)[:10]
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_allclose(scores, brute[expected], rtol=1e-5, atol=1e-6)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 80), seed=st.integers(0, 100))
def test_hits_sorted_and_never_padded(n, k, seed):
    rng = np.random.default_rng(seed)
    scores, rows = search_faiss(build_faiss(unit_rows(rng, n, 8)), unit_rows(rng, 1, 8)[0], k)
    assert len(rows) == min(k, n)
    assert (rows >= 0).all()
    assert np.all(np.diff(scores) <= 1e-6)


def test_an_ivf_index_that_fills_fewer_slots_gives_no_padding(rng):
    # With nprobe 1 an IVF index searches one of its 8 lists, so asking for most of the rows leaves slots empty:
    # FAISS pads them with row -1, which numpy would read as the last row, again and again.
    docs = unit_rows(rng, 400, 16)
    index = build_faiss(docs, "IVF8,Flat")
    scores, rows = search_faiss(index, docs[0], 200)
    assert 0 < len(rows) < 200 and (rows >= 0).all() and len(set(rows.tolist())) == len(rows)
    scores, rows = nearest(index, docs, docs[0], 200, code_error(index, docs))
    assert (rows >= 0).all() and len(set(rows.tolist())) == len(rows)
    np.testing.assert_allclose(scores, docs[rows] @ docs[0], atol=1e-6)


def test_round_trip_and_unknown_type(tmp_path, rng):
    docs = unit_rows(rng, 50, 8)
    index = build_faiss(docs)
    save_faiss(index, tmp_path / "x.faiss")
    again = load_faiss(tmp_path / "x.faiss")
    np.testing.assert_array_equal(search_faiss(index, docs[0], 5)[1], search_faiss(again, docs[0], 5)[1])
    with pytest.raises(InvalidArgument, match="unknown FAISS index type"):
        build_faiss(docs, "NoSuchIndex")
    with pytest.raises(InvalidArgument, match="cannot index these 50 rows"):
        build_faiss(docs, "IVF1024,Flat")


def test_code_error_bounds_the_stored_rows(rng):
    docs = unit_rows(rng, 300, 16)
    assert code_error(build_faiss(docs, "Flat"), docs) == 0.0
    fp16 = code_error(build_faiss(docs, "SQfp16"), docs)
    sq4 = code_error(build_faiss(docs, "SQ4"), docs)
    assert 0.0 < fp16 < 1e-3 < sq4
    assert code_error(build_faiss(docs, "HNSW8"), docs) is None


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 400), k=st.integers(1, 120), seed=st.integers(0, 1000),
    factory=st.sampled_from(["Flat", "SQfp16", "SQ8", "SQ4"]),
)
def test_nearest_is_exact_through_lossy_indexes(n, k, seed, factory):
    # Most documents crowd around the query, so SQ4's own top k (4 bits a value) is usually wrong and only
    # the widening makes it exact (without the bound, 43 of 50 such cases at k=20 came out wrong).
    rng = np.random.default_rng(seed)
    centre = unit_rows(rng, 1, 12)[0]
    near = centre + 0.3 * rng.normal(size=(n - n // 4, 12))
    docs = np.concatenate([near, rng.normal(size=(n // 4, 12))]).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    index = build_faiss(docs, factory)
    scores, rows = nearest(index, docs, centre, k, code_error(index, docs))
    brute = docs @ centre
    assert len(rows) == min(k, n) and len(set(rows.tolist())) == len(rows)
    np.testing.assert_allclose(scores, brute[rows], atol=1e-6)
    np.testing.assert_allclose(scores, np.sort(brute)[::-1][: len(rows)], atol=1e-6)


def test_nearest_only_rescores_an_approximate_index(rng):
    docs, q = unit_rows(rng, 500, 16), unit_rows(rng, 1, 16)[0]
    index = build_faiss(docs, "HNSW8")
    scores, rows = nearest(index, docs, q, 10, code_error(index, docs))
    np.testing.assert_allclose(scores, docs[rows] @ q, atol=1e-6)
    assert np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize(
    "factory, message",
    [
        ("nonsense", "unknown FAISS index type 'nonsense': could not parse index string nonsense"),
        ("Flat,Flat", "unknown FAISS index type 'Flat,Flat': could not parse index string Flat,Flat"),
        ("PQ7", "FAISS index type 'PQ7' cannot index 384-dimensional embeddings: The dimension of the vector (d) "
                "should be a multiple of the number of subquantizers (M)"),
        ("", "the FAISS index type is empty: give an index_factory string such as SQfp16, Flat or HNSW32"),
        (" ", "the FAISS index type is empty"),
    ],
)
def test_check_factory_says_what_faiss_says_without_its_cpp_internals(factory, message):
    with pytest.raises(InvalidArgument) as info:
        check_factory(factory, 384)
    assert str(info.value).startswith(message)
    assert "Error in" not in str(info.value) and ".cpp" not in str(info.value) and "faiss::" not in str(info.value)


def test_check_factory_passes_what_faiss_can_make_and_needs_d_for_the_rest():
    for factory in ("SQfp16", "Flat", "HNSW32", "PQ8", "IVF1024,Flat"):
        check_factory(factory, 384)
    check_factory("PQ7")  # without d only the empty string is refused
    check_factory("PQ7", 7 * 16)


def test_build_faiss_reasons_are_faiss_own_words(rng):
    with pytest.raises(InvalidArgument) as info:
        build_faiss(unit_rows(rng, 50, 8), "IVF1024,Flat")
    assert str(info.value) == (
        "FAISS index type 'IVF1024,Flat' cannot index these 50 rows: Number of training points (50) should be at "
        "least as large as number of clusters (1024)"
    )


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Error in void faiss::PCAMatrix::prepare_Ab() at /project/faiss/VectorTransform.cpp:846: Error: "
         "'static_cast<size_t>(d_out) * d_in <= PCAMat.size()' failed: PCA matrix cannot output 500 dimensions from 8 ",
         "PCA matrix cannot output 500 dimensions from 8"),
        ("Error in faiss::Index* faiss::{anonymous}::parse_other_indexes(const std::string&, int, faiss::MetricType) "
         "at /project/faiss/index_factory.cpp:823: Error: 'metric == METRIC_L2' failed",
         "'metric == METRIC_L2' failed"),
        ("something FAISS never said before", "something FAISS never said before"),
    ],
)
def test_faiss_reason_keeps_the_last_clause(text, reason):
    assert faiss_reason(RuntimeError(text)) == reason
