import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from indexer.catalog import Catalog
from indexer.evidence import Evidence, concept_evidence, probe_evidence
from indexer.steer import (
    BOOST_FLOOR,
    BOOST_SCALE,
    FAMILY_GATE,
    FAMILY_POOL,
    POOL,
    SUPPRESS_CAP,
    SUPPRESS_POOL,
    SUPPRESS_SCALE,
    bonus_split,
    candidate_pool,
    concept_bonus,
    term_level,
)
from indexer.steer_terms import SteerTerm, resolve_terms
from tests.conftest import random_reading


@pytest.fixture(scope="module")
def catalog(tiny_index):
    return Catalog(tiny_index)


finite = st.floats(-3, 3, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    strength=arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 4)), elements=finite),
    weight=st.floats(-2, 2, allow_nan=False),
    data=st.data(),
)
def test_concept_bonus_is_bounded_and_its_split_adds_up(strength, weight, data):
    m = strength.shape[1]
    shares = data.draw(arrays(np.float32, (m,), elements=st.floats(0.0625, 1, width=32)))
    direct = data.draw(arrays(bool, strength.shape))
    ev = Evidence(strength, direct, direct & data.draw(arrays(bool, strength.shape)))
    bonus = concept_bonus(ev, shares, weight)
    split = bonus_split(ev, shares, bonus, weight)
    level = np.array([reference_level(v, f, shares) for v, f in zip(ev.value, ev.fired)])
    if weight > 0:
        assert np.all((bonus >= 0) & (bonus <= weight * BOOST_SCALE + 1e-6))
    else:
        # A suppressed concept costs where it is present, in proportion up to the cap, and nothing where it is
        # absent.
        assert np.all((bonus <= 0) & (bonus >= weight * SUPPRESS_CAP - 1e-6))
        assert np.all(bonus[level <= 0] == 0)
        np.testing.assert_allclose(bonus, weight * np.minimum(SUPPRESS_SCALE * np.maximum(level, 0), SUPPRESS_CAP),
                                   atol=1e-6)
    np.testing.assert_allclose(split.sum(axis=1), bonus, atol=1e-5)
    # Row by row: any subset of the rows gets the same bonuses and splits.
    rows = data.draw(st.lists(st.integers(0, len(strength) - 1), max_size=len(strength)))
    np.testing.assert_array_equal(concept_bonus(ev[rows], shares, weight), bonus[rows])
    np.testing.assert_array_equal(bonus_split(ev[rows], shares, bonus[rows], weight), split[rows])


def reference_level(value, fired, shares, gate=-np.inf):
    """One document's level, feature by feature: the strongest share-scaled evidence among the features that
    fire on it when the share-weighted mean passes `gate`, else that mean."""
    mean = float((value * shares).sum() / shares.sum())
    carried = [v * s / shares.max() for v, f, s in zip(value, fired, shares) if f]
    return max(carried) if carried and mean > gate else mean


def test_a_document_carrying_one_member_of_a_large_family_gets_the_whole_steer():
    m = 383
    value = np.zeros((5, m), dtype=np.float32)
    fired = np.zeros((5, m), dtype=bool)
    value[:3] = 0.2  # reads as the family's topic on its members' probes
    value[0, 7], fired[0, 7] = 1.0, True  # fires member 7, reads as a typical carrier of it
    value[1, 7] = 1.0  # reads like member 7 on its probe alone: one of 383 readings
    value[2, :2], fired[2, :2] = [0.4, 1.5], True  # carries two members: as much as the stronger
    value[3, 9] = 1.0  # names a word of member 9 without firing it: a generic word among 383 members' words
    value[4, 7], fired[4, 7] = 1.0, True  # fires member 7 and reads nothing else of the family: a homonym
    shares = np.full(m, 1 / np.sqrt(m), dtype=np.float32)
    direct = fired.copy()
    direct[3, 9] = True
    ev = Evidence(value, direct, fired)
    mean = value.mean(axis=1)
    np.testing.assert_allclose(concept_bonus(ev, shares, 1.0), [BOOST_SCALE, 0, BOOST_SCALE, 0, 0], atol=1e-6)
    # A suppression spares no trace: the homonym pays as a carrier too.
    expected = -np.minimum(SUPPRESS_SCALE * np.array([1, mean[1], 1.5, mean[3], 1]), SUPPRESS_CAP)
    np.testing.assert_allclose(concept_bonus(ev, shares, -1.0), expected, atol=1e-6)
    split = bonus_split(ev, shares, concept_bonus(ev, shares, -1.0), -1.0)
    assert split[0, 7] == split[0].sum() and split[2, 1] == split[2].sum() and split[4, 7] == split[4].sum()
    boost = concept_bonus(ev, shares, 1.0)
    assert bonus_split(ev, shares, boost, 1.0)[0, 7] == pytest.approx(boost[0])


@pytest.mark.parametrize("weight", [1.0, -1.0])
def test_one_feature_is_its_own_family_mean_so_the_gate_changes_nothing(weight):
    value = np.array([[0.05], [0.5], [-0.2], [1.2]], dtype=np.float32)
    fired = np.array([[True], [True], [False], [True]])
    ev = Evidence(value, fired, fired)
    level = np.clip(value[:, 0], 0, None)
    want = BOOST_SCALE * np.clip((level - BOOST_FLOOR) / (1 - BOOST_FLOOR), 0, 1) if weight > 0 else \
        -np.minimum(SUPPRESS_SCALE * level, SUPPRESS_CAP)
    np.testing.assert_allclose(concept_bonus(ev, np.ones(1, dtype=np.float32), weight), want, atol=1e-6)
    # Level by level too: a boost's bonus is 0 at any level below BOOST_FLOOR, so the bonus alone would not show
    # a gate that moved the fired document at 0.05 (below FAMILY_GATE).
    one = np.ones(1, dtype=np.float32)
    np.testing.assert_array_equal(term_level(ev, one, FAMILY_GATE), term_level(ev, one))
    np.testing.assert_allclose(term_level(ev, one, FAMILY_GATE), value[:, 0])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.integers(0, 300), m=st.integers(1, 120), gate=st.sampled_from([-np.inf, 0.1]))
def test_a_factored_terms_level_equals_the_dense_one(seed, c, m, gate):
    emb, probes, mu, word, firing = random_reading(seed, c, m)
    shares = np.random.default_rng(seed).uniform(0.1, 1, m).astype(np.float32)
    dense = concept_evidence(emb @ probes.T - probes @ mu, word, firing)
    expected = np.array([reference_level(v, f, shares, gate) for v, f in zip(dense.value, dense.fired)], dtype=np.float32)
    got = term_level(probe_evidence(emb, probes, mu, word, firing), shares, gate)
    # A mean within rounding of the gate may fall on either side of it in the two readings.
    near = np.abs(np.array([(v * shares).sum() / shares.sum() for v in dense.value]) - gate) < 1e-4
    np.testing.assert_allclose(got[~near], expected.reshape(c)[~near], atol=1e-4)
    np.testing.assert_allclose(term_level(dense, shares, gate)[~near], expected.reshape(c)[~near], atol=1e-4)


def test_concept_bonus_levels():
    strength = Evidence(
        np.array([[-1.0], [0.0], [BOOST_FLOOR], [0.65], [1.0], [3.0]], dtype=np.float32), *np.zeros((2, 6, 1), bool)
    )
    shares = np.ones(1, dtype=np.float32)
    boost = concept_bonus(strength, shares, 1.0)
    # Nothing at or below the boost floor, full scale from a typical concept document (strength 1) up.
    np.testing.assert_allclose(boost, [0, 0, 0, BOOST_SCALE / 2, BOOST_SCALE, BOOST_SCALE], atol=1e-6)
    suppress = concept_bonus(strength, shares, -2.0)
    # Linear from 0 up to the cap: an absent concept costs nothing, a weak trace in proportion, and a clear
    # carrier the cap, however strong (a document without the concept at most that much less similar wins).
    linear = SUPPRESS_SCALE * np.array([0, 0, 0.3, 0.65, 1, 3])
    np.testing.assert_allclose(suppress, -2 * np.minimum(linear, SUPPRESS_CAP), atol=1e-6)
    assert suppress[2] > -2 * SUPPRESS_CAP and suppress[4] == suppress[5] == np.float32(-2 * SUPPRESS_CAP)
    zero = concept_bonus(strength, shares, 0.0)
    assert not zero.any() and not bonus_split(strength, shares, zero, 0.0).any()


def test_split_follows_the_parts_that_agree_with_the_strength():
    # Read on the probes alone (no document names or fires a feature): the mean of the two.
    strength = Evidence(
        np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, 3.0], [-2.0, 0.5]], dtype=np.float32), *np.zeros((2, 4, 2), bool)
    )
    shares = np.array([1.0, 1.0], dtype=np.float32)
    bonus = concept_bonus(strength, shares, -1.0)
    split = bonus_split(strength, shares, bonus, -1.0)
    np.testing.assert_allclose(split[0], [bonus[0], 0.0], atol=1e-6)
    np.testing.assert_allclose(split[1], [bonus[1] / 2, bonus[1] / 2], atol=1e-6)
    np.testing.assert_allclose(split[2], [0.0, bonus[2]], atol=1e-6)
    # Net strength -0.75: the concept is absent, nothing to pay.
    assert bonus[3] == 0 and not split[3].any()


def test_a_family_boost_rescores_the_widest_pool_and_a_suppression_the_narrowest(catalog):
    def pool(*terms):
        return candidate_pool(resolve_terms(catalog, list(terms)))

    assert SUPPRESS_POOL < POOL < FAMILY_POOL
    assert pool(SteerTerm(-1.0, feature=9), SteerTerm(-1.0, family=0)) == SUPPRESS_POOL
    assert pool(SteerTerm(1.0, feature=3), SteerTerm(-1.0, family=0)) == POOL
    assert pool(SteerTerm(1.0, concept="topic9")) == POOL
    assert pool(SteerTerm(-1.0, feature=3), SteerTerm(1.0, family=0)) == FAMILY_POOL
