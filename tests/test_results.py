"""What a search returns (indexer/results.py): the contributions a result lists, and their rounding."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.results import largest_contributions, rounded_contributions


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1, 1, allow_nan=False, width=32), max_size=40),
    limit=st.integers(2, 12),
)
def test_largest_contributions_keep_the_largest_and_the_sum(values, limit):
    parts = [(i, f"f{i}", v) for i, v in enumerate(values)]
    out = largest_contributions(parts, limit)
    nonzero = [v for v in values if v != 0.0]  # a part of exactly 0 is left out
    assert len(out) == min(len(nonzero), limit)
    assert sum(v for _, _, v in out) == pytest.approx(sum(values), abs=1e-9)
    sizes = sorted((abs(v) for v in nonzero), reverse=True)
    kept = [abs(v) for fid, _, v in out if fid is not None]
    # Whatever is listed by name is the largest, in order; the rest is one entry at the end.
    assert kept == sizes[: len(kept)]
    if len(nonzero) > limit:
        assert out[-1][0] is None and out[-1][1] == f"the other {len(nonzero) - limit + 1} parts"


def test_two_terms_on_one_feature_give_it_one_contribution():
    parts = [(7, "f7", 0.25), (3, "f3", 0.1), (7, "f7", 0.25), (5, "f5", 0.2), (5, "f5", -0.2)]
    assert largest_contributions(parts) == [(7, "f7", 0.5), (3, "f3", 0.1)]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-0.4, 0.4, allow_nan=False), min_size=1, max_size=12),
    plain=st.floats(-1, 1, allow_nan=False),
)
def test_rounded_contributions_add_up_to_the_rounded_difference(values, plain):
    parts = [(i, f"f{i}", v) for i, v in enumerate(values)]
    score = plain + sum(values)
    out = rounded_contributions(parts, score, plain)
    assert round(sum(c.value for c in out) * 1e6) == round(score * 1e6) - round(plain * 1e6)
    assert all(c.value != 0 for c in out)
