import numpy as np
import pytest

from indexer.errors import InvalidArgument, UnknownFamily, UnknownFeature
from indexer.search import STEER_SCALE, Searcher, SteerTerm


@pytest.fixture(scope="module")
def searcher(tiny_index):
    return Searcher(tiny_index)


def share_firing(searcher, rows, feature):
    """Share of result documents where `feature` is active."""
    codes = searcher.data.codes
    return np.mean([feature in codes.indices[r][codes.values[r] > 0] for r in rows])


def query_vec(searcher, row=0):
    return searcher.data.embeddings[row]


def test_unsteered_search_is_plain_dense_retrieval(searcher):
    x = query_vec(searcher, 5)
    out = searcher.search(x, 10)
    brute = np.argsort(-(searcher.data.embeddings @ x))[:10]
    assert [h.row for h in out.hits] == brute.tolist()
    assert all(a.score >= b.score for a, b in zip(out.hits, out.hits[1:]))


def test_weight_zero_changes_nothing(searcher):
    x = query_vec(searcher, 3)
    plain = searcher.search(x, 10)
    zero = searcher.search(x, 10, [SteerTerm(weight=0.0, feature=7)])
    assert [(h.row, h.score) for h in zero.hits] == [(h.row, h.score) for h in plain.hits]


def test_suppressing_the_strongest_feature_lowers_its_share(searcher):
    x = query_vec(searcher, 11)
    strongest = searcher.search(x, 20).query_features[0].id
    before = share_firing(searcher, [h.row for h in searcher.search(x, 20).hits], strongest)
    after = share_firing(searcher, [h.row for h in searcher.search(x, 20, [SteerTerm(-1.0, strongest)]).hits], strongest)
    assert after < before


def test_boosting_a_feature_raises_its_share(searcher):
    x = query_vec(searcher, 11)
    query_feats = {a.id for a in searcher.search(x, 20).query_features}
    target = next(f for f in range(searcher.catalog.n_features) if f not in query_feats and searcher.data.stats.p90[f] > 0)
    before = share_firing(searcher, [h.row for h in searcher.search(x, 20).hits], target)
    after = share_firing(searcher, [h.row for h in searcher.search(x, 20, [SteerTerm(1.0, target)]).hits], target)
    assert after > before


def test_steered_code_moves_by_the_documented_amount(searcher):
    x = query_vec(searcher, 2)
    target = 9
    out = searcher.search(x, 5, [SteerTerm(1.5, target)])
    z = searcher.encode(x)
    expected = z[target] + 1.5 * STEER_SCALE * searcher.data.stats.p90[target]
    got = {a.id: a.activation for a in out.steered_features}[target]
    assert got == pytest.approx(expected, rel=1e-4)


def test_result_features_are_shared_with_the_steered_query(searcher):
    out = searcher.search(query_vec(searcher, 4), 10, [SteerTerm(1.0, "topic3 words")])
    steered = {a.id for a in out.steered_features}
    for hit in out.hits:
        doc_feats = set(searcher.data.codes.indices[hit.row].tolist())
        assert {f.id for f in hit.features} <= steered & doc_feats


def test_query_features_strongest_first(searcher):
    acts = [a.activation for a in searcher.search(query_vec(searcher, 1), 3).query_features]
    assert acts == sorted(acts, reverse=True) and len(acts) <= searcher.k


def test_family_steer_spreads_over_members(searcher):
    out = searcher.search(query_vec(searcher, 1), 3, [SteerTerm(1.0, family="family zero")])
    (r,) = out.resolved
    assert [f.id for f in r.features] == [0, 1, 2, 3] and r.family.id == 0
    assert sum(d * d for d in r.deltas) == pytest.approx(
        sum((STEER_SCALE * searcher.data.stats.p90[f]) ** 2 for f in [0, 1, 2, 3]) / 4, rel=1e-5
    )


def test_bad_steer_terms_are_refused(searcher):
    x = query_vec(searcher)
    with pytest.raises(UnknownFeature) as info:
        searcher.search(x, 5, [SteerTerm(1.0, "topic3 word")])
    assert "topic3 words" in info.value.suggestions
    with pytest.raises(UnknownFeature, match="ids run from 0"):
        searcher.search(x, 5, [SteerTerm(1.0, 10_000)])
    with pytest.raises(UnknownFamily):
        searcher.search(x, 5, [SteerTerm(1.0, family="no such family")])
    with pytest.raises(InvalidArgument, match="weight"):
        searcher.search(x, 5, [SteerTerm(2.5, 1)])
    with pytest.raises(InvalidArgument, match="exactly one"):
        searcher.search(x, 5, [SteerTerm(1.0, 1, family=0)])
    with pytest.raises(InvalidArgument, match="k must"):
        searcher.search(x, 0)
