import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.evidence import (
    FIRE_CAP,
    FIRE_EVIDENCE,
    MIN_BACKGROUND,
    WORD_EVIDENCE,
    concept_evidence,
    probe_evidence,
)
from tests.conftest import random_reading


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-1, 1, allow_nan=False))
def test_evidence_is_measured_from_the_background(seed, shift):
    rng = np.random.default_rng(seed)
    c, m = int(rng.integers(0, 60)), int(rng.integers(1, 6))
    strength = rng.normal(size=(c, m)).astype(np.float32)
    word = rng.random((c, m)) < 0.3
    firing = np.where(rng.random((c, m)) < 0.3, rng.random((c, m)) * 3, 0).astype(np.float32)
    clean = ~word & (firing <= 0)
    evidence = concept_evidence(strength, word, firing)
    ev = evidence.value
    np.testing.assert_array_equal(evidence.direct, ~clean)
    for j in range(m):
        if clean[:, j].sum() >= MIN_BACKGROUND:
            # Candidates without the concept's words or feature sit around 0, half of them at or below it.
            assert np.median(ev[clean[:, j], j]) == pytest.approx(0, abs=1e-5)
        else:
            raw = strength[:, j] + WORD_EVIDENCE * word[:, j] + FIRE_EVIDENCE * np.minimum(firing[:, j], FIRE_CAP)
            np.testing.assert_allclose(ev[:, j], raw, atol=1e-5)
    # A reading the whole neighbourhood shares changes nothing once there is a background to measure it by.
    shifted = concept_evidence(strength + np.float32(shift), word, firing).value
    measured = clean.sum(axis=0) >= MIN_BACKGROUND
    np.testing.assert_allclose(shifted[:, measured], ev[:, measured], atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), c=st.integers(0, 400), m=st.integers(1, 200))
def test_factored_evidence_equals_the_dense_reading(seed, c, m):
    emb, probes, mu, word, firing = random_reading(seed, c, m)
    dense = concept_evidence(emb @ probes.T - probes @ mu, word, firing)
    factored = probe_evidence(emb, probes, mu, word, firing)
    rows = np.arange(c)[::-1]
    np.testing.assert_allclose(factored[rows].value, dense.value[rows], atol=1e-4)
    np.testing.assert_array_equal(factored[rows].direct, dense.direct[rows])
