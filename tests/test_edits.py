import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.edits import (
    MIN_NORM, MIX_BETA, QueryCancelled, decode_query, edit_contributions, mix_query, residual_query, rewrite_query,
)


def test_query_edits_match_their_formulas(rng):
    d, n = 8, 12
    w_dec = rng.normal(size=(n, d)).astype(np.float32)
    b_dec = rng.normal(size=d).astype(np.float32)
    x = rng.normal(size=d).astype(np.float32)
    x /= np.linalg.norm(x)
    delta = np.zeros(n, dtype=np.float32)
    delta[[2, 5]] = [0.7, -0.4]
    q, norm = residual_query(x, delta, w_dec)
    raw = x + 0.7 * w_dec[2] - 0.4 * w_dec[5]
    np.testing.assert_allclose(q, raw / np.linalg.norm(raw), atol=1e-6)
    assert norm == pytest.approx(np.linalg.norm(raw), rel=1e-5)
    z = np.zeros(n, dtype=np.float32)
    z[[1, 2]] = [0.5, 0.1]
    dec = decode_query(z, delta, w_dec, b_dec)
    raw = 0.5 * w_dec[1] + 0.8 * w_dec[2] + b_dec  # feature 5 would go negative: clipped at 0
    np.testing.assert_allclose(dec, raw / np.linalg.norm(raw), atol=1e-6)
    e = np.eye(d, dtype=np.float32)[0]
    mixed, norm = mix_query(x, [e], [-1.0])
    raw = x - MIX_BETA * e
    np.testing.assert_allclose(mixed, raw / np.linalg.norm(raw), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_parts=st.integers(1, 4))
def test_edit_contributions_add_up(seed, n_parts):
    rng = np.random.default_rng(seed)
    x, doc = rng.normal(size=6), rng.normal(size=6)
    parts = [(i, f"f{i}", rng.normal(size=6)) for i in range(n_parts)]
    raw = x + sum(v for _, _, v in parts)
    norm = float(np.linalg.norm(raw))
    contrib = edit_contributions(doc, float(x @ doc), norm, parts)
    assert sum(v for _, _, v in contrib) == pytest.approx(float(raw @ doc) / norm - float(x @ doc), abs=1e-9)


def test_an_edit_that_cancels_the_query_is_refused(rng):
    x = rng.normal(size=8).astype(np.float32)
    x /= np.linalg.norm(x)
    with pytest.raises(QueryCancelled, match="cancel the query"):
        mix_query(x, [x], [-1 / MIX_BETA])  # away from the query's own embedding: exactly nothing left
    with pytest.raises(QueryCancelled):
        residual_query(x, np.array([-1.0], dtype=np.float32), x[None, :])
    q, norm = mix_query(x, [x], [-1 / MIX_BETA + 2 * MIN_NORM])  # a little is left: searched with, as x itself
    np.testing.assert_allclose(q, x, atol=1e-5)
    assert norm == pytest.approx(2 * MIN_NORM * MIX_BETA, rel=1e-3)
    assert rewrite_query(x, [x], [1.0])[1] == pytest.approx(1.0)
