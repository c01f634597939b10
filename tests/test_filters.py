import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.catalog import Catalog
from indexer.errors import InvalidArgument, UnknownFeature
from indexer.filters import FilterIndex, Filters, Target
from tests.conftest import fires


@pytest.fixture(scope="module")
def index(tiny_index):
    return FilterIndex(tiny_index, Catalog(tiny_index))


@settings(max_examples=30, deadline=None)
@given(
    require=st.lists(st.integers(0, 23), max_size=2), exclude=st.lists(st.integers(0, 23), max_size=2),
    categories=st.lists(st.sampled_from(["cat", "cat.0", "CAT.2", "none"]), max_size=2),
    threshold=st.sampled_from([0.0, 0.5, 1.5]),
)
def test_allowed_matches_a_brute_force_reading_of_the_codes(index, require, exclude, categories, threshold):
    data = index.data
    filters = Filters([Target(f) for f in require], [Target(f) for f in exclude], categories, threshold)
    expected = [
        all(fires(data, r, f, threshold) for f in require)
        and not any(fires(data, r, f, threshold) for f in exclude)
        and (not categories or any(
            c.lower() == w.lower() or c.lower().startswith(w.lower() + ".") for c in data.corpus.categories[r] for w in categories
        ))
        for r in range(len(data.corpus))
    ]
    mask = index.apply(filters, k=10).mask
    np.testing.assert_array_equal(np.ones(len(expected), bool) if mask is None else mask, expected)
    assert (mask is None) == (not filters.active)


def test_a_family_fires_where_any_member_does(index):
    data = index.data
    fam = index.catalog.family_id("family four")
    members = index.catalog.family_members(fam)
    expected = [r for r in range(len(data.corpus)) if any(fires(data, r, f, 0.0) for f in members)]
    assert index.firing_docs(Target(family="family four")).tolist() == expected


def test_a_target_names_exactly_one_of_feature_or_family(index):
    for bad in (Target(), Target(feature=1, family=0)):
        with pytest.raises(InvalidArgument, match="exactly one"):
            index.firing_docs(bad)


def test_categories_are_counted_and_unknown_ones_named(index):
    counts = dict(index.category_counts())
    for cat, n in counts.items():
        assert n == sum(cat in cats for cats in index.data.corpus.categories)
    assert [n for _, n in index.category_counts()] == sorted(counts.values(), reverse=True)
    assert index.unknown_categories(["cat", "Cat.0", "none", " ", "ca"]) == ["none", "ca"]
    assert index.unknown_categories(["\uff43\uff41\uff54"]) == []  # "ｃａｔ", in full-width letters


def test_a_target_both_required_and_excluded_is_named(index):
    def notes(filters):
        applied = index.apply(filters, k=10)
        assert applied.mask is None or not applied.mask.any()
        return applied.notes

    name = index.data.names.names[4]
    assert notes(Filters([Target(4), Target(family=0)], [Target(name), Target(5)])) == [
        "feature 4 is both required and excluded, so no document can pass",
        "no document passes the filters, so there are no results",
    ]
    member = int(index.catalog.family_members(0)[0])
    assert notes(Filters([Target(member)], [Target(family=0)]))[0] == (
        f"feature {member} is required but belongs to the excluded family 0, so no document can pass"
    )
    members = [Target(int(f)) for f in index.catalog.family_members(0)]
    assert notes(Filters([Target(family=0)], members))[0] == (
        "family 0 is required but each of its features is excluded, so no document can pass"
    )
    assert index.apply(Filters([Target(family=0)], members[1:]), k=1).notes == []
    assert notes(Filters(threshold=0.5)) == [
        "threshold applies to require and exclude, and neither was given, so it changed nothing"
    ]
    assert index.apply(Filters(exclude=[Target(5)], threshold=0.5), k=1).notes == []


def test_apply_resolves_each_target_once_and_names_repeats(index):
    name = index.data.names.names[3]
    applied = index.apply(Filters(exclude=[Target(3), Target(family=0), Target(name), Target(3)]), k=1)
    assert applied.notes == ["exclude names feature 3 more than once; once is enough"]
    assert applied.excluded == {3, *index.catalog.family_members(0).tolist()}
    once = index.apply(Filters(exclude=[Target(3), Target(family=0)]), k=1)
    np.testing.assert_array_equal(applied.mask, once.mask)
    assert applied.matched == once.matched == int(once.mask.sum())


def test_a_required_feature_that_fires_nowhere_is_named(index):
    threshold = 10.0  # ten times its p90: no activation reaches that in the tiny index
    assert index.apply(Filters([Target(2)], threshold=threshold), k=5).notes == [
        "required feature 2 fires on no document above the threshold, so no document can pass",
        "no document passes the filters, so there are no results",
    ]


def test_fewer_passing_documents_than_k_are_counted(index):
    applied = index.apply(Filters(require=[Target(2)]), k=len(index.data.corpus))
    assert applied.matched == len(index.firing_docs(Target(2))) < len(index.data.corpus)
    assert applied.notes == [
        f"only {applied.matched} documents pass the filters, so fewer than k={len(index.data.corpus)} results are returned"
    ]
    assert index.apply(Filters(), k=5).mask is None


def test_an_unknown_target_says_which_entry_it_is(index):
    with pytest.raises(UnknownFeature, match=r"^exclude\.1: no feature with id 999"):
        index.apply(Filters([Target(1)], [Target(2), Target(999)]), k=1)
