import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.codes import SparseCodes, feature_stats, invert, postings_at
from tests.conftest import dense_rows


def random_codes(rng: np.random.Generator, n_docs: int, n_features: int, k: int) -> SparseCodes:
    idx = np.stack([rng.choice(n_features, k, replace=False) for _ in range(n_docs)]).astype(np.int32)
    val = rng.uniform(0, 2, size=(n_docs, k)).astype(np.float32)
    val[rng.random((n_docs, k)) < 0.2] = 0.0  # some slots did not fire
    order = np.argsort(-val, axis=1, kind="stable")
    return SparseCodes(np.take_along_axis(idx, order, 1), np.take_along_axis(val, order, 1), n_features)


@settings(max_examples=30, deadline=None)
@given(n_docs=st.integers(1, 40), n_features=st.integers(4, 30), k=st.integers(1, 4), seed=st.integers(0, 1000))
def test_inverted_lists_hold_exactly_the_fired_slots_sorted(n_docs, n_features, k, seed):
    codes = random_codes(np.random.default_rng(seed), n_docs, n_features, k)
    inv = invert(codes)
    dense = dense_rows(codes, np.arange(n_docs))
    for f in range(n_features):
        docs, vals = inv.postings(f)
        assert np.all(np.diff(vals) <= 0), "postings must be strongest first"
        expected = np.flatnonzero(dense[:, f] > 0)
        assert sorted(docs.tolist()) == expected.tolist()
        np.testing.assert_array_equal(vals, dense[docs, f])
    assert inv.counts().sum() == (codes.values > 0).sum()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), data=st.data())
def test_postings_at_reads_the_dense_codes(seed, data):
    # Features in any order, repeated or not; rows in any order with repeats, as candidates may come.
    codes = random_codes(np.random.default_rng(seed), 30, 12, 3)
    inv, dense = invert(codes), dense_rows(codes, np.arange(30))
    feats = data.draw(st.lists(st.integers(0, 11), min_size=1, max_size=5))
    rows = np.array(data.draw(st.lists(st.integers(0, 29), max_size=40)), dtype=np.int64)
    got = postings_at(inv.indptr, inv.doc_ids, feats, rows, inv.values)
    np.testing.assert_array_equal(got, dense[rows][:, feats])
    np.testing.assert_array_equal(postings_at(inv.indptr, inv.doc_ids, feats, rows), dense[rows][:, feats] > 0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), data=st.data())
def test_strongest_postings_are_each_features_first_n(seed, data):
    inv = invert(random_codes(np.random.default_rng(seed), 30, 12, 3))
    feats = data.draw(st.lists(st.integers(0, 11), max_size=6))
    n = data.draw(st.lists(st.integers(0, 40), min_size=len(feats), max_size=len(feats)))
    expected = [inv.postings(f)[0][:k] for f, k in zip(feats, n)]
    got = inv.strongest(np.array(feats, dtype=np.int64), np.array(n, dtype=np.int64))
    np.testing.assert_array_equal(got, np.concatenate(expected) if expected else [])


def test_feature_stats_match_brute_force(rng):
    codes = random_codes(rng, 300, 12, 3)
    stats = feature_stats(invert(codes), codes.n_docs)
    dense = dense_rows(codes, np.arange(codes.n_docs))
    for f in range(12):
        fired = dense[:, f][dense[:, f] > 0]
        assert stats.density[f] == np.float32(len(fired) / 300)
        assert stats.max_activation[f] == fired.max()
        # p90 is an order statistic: about 10% of firing activations lie above it.
        assert np.mean(fired > stats.p90[f]) <= 0.1 + 1e-9
        assert np.mean(fired >= stats.p90[f]) >= 0.1


def test_dead_feature_has_zero_stats():
    codes = SparseCodes(np.array([[0, 1]], dtype=np.int32), np.array([[1.0, 0.5]], dtype=np.float32), 3)
    stats = feature_stats(invert(codes), 1)
    assert stats.density[2] == 0 and stats.p90[2] == 0 and stats.max_activation[2] == 0
