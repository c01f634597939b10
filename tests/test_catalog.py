import pytest

from indexer.catalog import Catalog, family_summary, family_tree, feature_detail, list_families
from indexer.errors import UnknownFeature


@pytest.fixture(scope="module")
def catalog(tiny_index):
    return Catalog(tiny_index)


def test_feature_references(catalog):
    assert catalog.feature_id(5) == 5
    assert catalog.feature_id("5") == 5
    assert catalog.feature_id("Topic7 Words") == 7
    with pytest.raises(UnknownFeature, match="did you mean"):
        catalog.feature_id("topic7 wordz")


def test_name_search_puts_exact_match_first(catalog):
    hits = catalog.search("topic12 words", limit=5)
    assert hits[0].id == 12
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert catalog.search("   ") == []


def test_the_feature_a_word_stands_for_comes_first(catalog):
    hits = catalog.search("topic5", limit=30)
    assert hits[0].id == 5 and 1.0 < hits[0].score <= 2.0
    # Features that only mention the word in their name or terms rank below every word-predicted one.
    lexical = catalog.search("words", limit=30)
    assert lexical and all(h.score < 1.0 for h in lexical)
    assert catalog.search("topic5 words", limit=1)[0].score == 3.0
    assert catalog.concepts.concept_term(5) == "topic5"


def test_feature_detail(catalog, tiny_index):
    d = feature_detail(catalog, 2)
    acts = [doc.activation for doc in d.top_documents]
    assert acts == sorted(acts, reverse=True) and len(acts) == min(10, tiny_index.inv.counts()[2])
    assert d.family.id == 0 and d.family.name == "family zero"
    assert 2 not in [n.id for n in d.neighbors]
    assert d.concept_term == "topic2"


def test_families_largest_first_and_tree(catalog):
    total, page = list_families(catalog)
    assert total == 2 and [f.size for f in page] == [4, 3]
    assert family_summary(catalog, "family four").parent.id == 4
    tree = family_tree(catalog, 0)
    assert tree.id == 0 and [c.id for c in tree.children] == [1, 2, 3]


def test_filter_and_sort_by_trust(tiny_index):
    import numpy as np

    from indexer.artifacts import IndexData

    trust = np.linspace(0, 1, tiny_index.sae.n).astype(np.float32)
    names = type(tiny_index.names)(**{**vars(tiny_index.names), "trust": trust})
    catalog = Catalog(IndexData(**{**vars(tiny_index), "names": names}))
    hits = catalog.search(None, limit=100, min_trust=0.5, sort="trust")
    assert hits and all(h.trust >= 0.5 for h in hits)
    assert [h.trust for h in hits] == sorted((h.trust for h in hits), reverse=True)
    dens = [h.density for h in catalog.search("words", limit=100, sort="density")]
    assert dens == sorted(dens, reverse=True)
