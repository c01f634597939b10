import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.catalog import Catalog, family_summary, family_tree, feature_detail, list_families
from indexer.errors import InvalidArgument, UnknownFamily, UnknownFeature
from indexer.wordsearch import name_words, rank_by_word


@pytest.fixture(scope="module")
def catalog(tiny_index):
    return Catalog(tiny_index)


def test_feature_references(catalog):
    assert catalog.feature_id(5) == 5
    assert catalog.feature_id("5") == 5
    assert catalog.feature_id("Topic7 Words") == 7
    with pytest.raises(UnknownFeature, match="did you mean"):
        catalog.feature_id("topic7 wordz")


@pytest.mark.parametrize("ref", [-1, "-1", " -1 "])
def test_a_negative_id_is_an_id_out_of_range_however_it_is_written(catalog, ref):
    with pytest.raises(UnknownFeature, match=r"^no feature with id -1; ids run from 0 to"):
        catalog.feature_id(ref)


@pytest.mark.parametrize("ref", ["\u00b2", "\u0663", "\uff13"])  # superscript two, Arabic-Indic and full-width three
def test_only_ascii_digits_are_an_id(catalog, ref):
    with pytest.raises(UnknownFeature, match="no feature named"):
        catalog.feature_id(ref)
    with pytest.raises(UnknownFamily, match="no family named"):
        catalog.family_id(ref)


def test_a_name_two_features_or_families_share_asks_for_an_id(tiny_index):
    import dataclasses

    names = list(tiny_index.names.names)
    names[9] = names[7]
    data = dataclasses.replace(tiny_index, names=dataclasses.replace(tiny_index.names, names=names))
    with pytest.raises(UnknownFeature, match="features 7, 9 are all named") as info:
        Catalog(data).feature_id(names[7].upper())
    assert info.value.suggestions == ["7", "9"]
    # A family is named after its parent, so two families can share a name too.
    fams = list(tiny_index.families.names)
    fams[1] = fams[0]
    data = dataclasses.replace(tiny_index, families=dataclasses.replace(tiny_index.families, names=fams))
    with pytest.raises(UnknownFamily, match="families 0, 1 are all named") as info:
        Catalog(data).family_id(f" {fams[0]}")
    assert info.value.suggestions == ["0", "1"]


def test_suggestions_lead_with_names_that_begin_with_the_unknown_one(tiny_index):
    import dataclasses

    names = list(tiny_index.names.names)
    names[3], names[11] = "dark matter, particles, scattering", "dwarf, dark matter, density"
    catalog = Catalog(dataclasses.replace(tiny_index, names=dataclasses.replace(tiny_index.names, names=names)))
    with pytest.raises(UnknownFeature) as info:
        catalog.feature_id("Dark Matter ")
    assert info.value.suggestions[:2] == ["dark matter, particles, scattering", "dwarf, dark matter, density"]
    names[5] = "vision-based tactile sensors, tactile sensing"  # "tactile" is no name's first phrase, but a word of one
    catalog = Catalog(dataclasses.replace(tiny_index, names=dataclasses.replace(tiny_index.names, names=names)))
    with pytest.raises(UnknownFeature) as info:
        catalog.feature_id("tactile")
    assert info.value.suggestions[0] == "vision-based tactile sensors, tactile sensing"


def test_a_name_is_found_in_any_unicode_form_and_its_words_without_accents(tiny_index):
    import dataclasses
    import unicodedata

    names = list(tiny_index.names.names)
    names[4] = "rényi divergence, bound, mirror descent"
    catalog = Catalog(dataclasses.replace(tiny_index, names=dataclasses.replace(tiny_index.names, names=names)))
    decomposed = unicodedata.normalize("NFD", names[4])  # as some keyboards and browsers send it
    assert decomposed != names[4] and catalog.feature_id(decomposed.upper()) == 4
    assert catalog.search(decomposed, limit=1)[0].score == 3.0  # the exact name
    assert catalog.search("renyi divergence", limit=1)[0].id == 4  # its words, typed without the accent
    assert catalog.feature_id("Renyi divergence, bound, mirror descent") == 4  # the name too
    names[6] = "pokemon, battle, game"  # as a build names it now: from words without accents
    catalog = Catalog(dataclasses.replace(tiny_index, names=dataclasses.replace(tiny_index.names, names=names)))
    assert catalog.feature_id("pokémon, battle, game") == 6
    assert catalog.search("Pok\\'emon, battle, game")[0].score == 3  # LaTeX's accent too


@pytest.mark.parametrize("blank", ["", "  ", "\u200b", "\u3164"])
def test_a_blank_name_is_refused_as_blank(catalog, blank):
    for lookup, kind in ((catalog.feature_id, "feature"), (catalog.family_id, "family")):
        with pytest.raises(InvalidArgument, match=f"^a {kind} name must not be blank"):
            lookup(blank)


def test_an_index_without_families_says_so(tiny_index, catalog):
    import dataclasses

    with pytest.raises(UnknownFamily, match="no family with id 9; ids run from 0 to 1"):
        catalog.family_id(9)
    empty = dataclasses.replace(tiny_index.families, parent=tiny_index.families.parent[:0], children=[], names=[])
    with pytest.raises(UnknownFamily, match="no family with id 0; this index has no families"):
        Catalog(dataclasses.replace(tiny_index, families=empty)).family_id(0)


def test_function_words_match_nothing_by_themselves(catalog):
    as_scores = lambda hits: [(h.id, h.score) for h in hits]  # noqa: E731
    assert as_scores(catalog.search("the topic3 of", limit=3)) == as_scores(catalog.search("topic3", limit=3))
    assert catalog.search("of the", limit=3) == []
    assert name_words("Key-value caches of a galaxy's") == ["key", "value", "caches", "galaxy"]


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


@pytest.mark.parametrize("text", [None, "words"])
def test_pages_of_a_search_join_into_the_whole_list(catalog, text):
    whole = catalog.search(text, limit=1000)
    pages = [h for off in range(0, len(whole) + 5, 5) for h in catalog.search(text, limit=5, offset=off)]
    assert len(whole) > 5 and pages == whole
    assert {catalog.search_page(text, limit=5, offset=off)[0] for off in (0, 5, len(whole) + 5)} == {len(whole)}


def naive_scores(catalog, text, by_word):
    """The ranking's scores feature by feature, as the docstrings of Catalog.search_page and wordsearch.lexical_index
    state them."""
    names, q = catalog.data.names, set(name_words(text))
    out = {}
    for i, name in enumerate(names.names):
        if names.status[i] == "dead":
            continue
        if name.lower() == text.strip().lower():
            out[i] = 3.0
        elif i in by_word:
            out[i] = 1.0 + by_word[i].score
        else:
            lexical = 2.0 * len(q & set(name_words(name))) / len(q)
            for rank, term in enumerate(names.terms[i]):
                lexical += len(q & set(name_words(term))) / len(q) / (1.0 + 0.3 * rank)
            if lexical > 0:
                out[i] = lexical / (1.0 + lexical)
    return out


@settings(max_examples=40, deadline=None)
@given(data=st.data(), words_known=st.booleans())
def test_search_scores_match_a_feature_by_feature_reading(catalog, data, words_known):
    # In the tiny corpus most words predict a feature, whose word score then hides the lexical one; with
    # words_known False the word scores are left out, so the lexical scores decide.
    vocabulary = sorted({w for n, ts in zip(catalog.data.names.names, catalog.data.names.terms) for t in [n, *ts] for w in name_words(t)})
    text = " ".join(data.draw(st.lists(st.sampled_from(vocabulary), min_size=1, max_size=3)))
    by_word = rank_by_word(catalog.concepts, text, catalog.concepts.best_f1(), len(catalog.data.corpus)) if words_known else {}
    expected = naive_scores(catalog, text, by_word)
    with pytest.MonkeyPatch.context() as m:
        m.setattr("indexer.catalog.rank_by_word", lambda *args: by_word)
        hits = catalog.search(text, limit=1000)
    assert {h.id: h.score for h in hits} == pytest.approx({i: round(v, 4) for i, v in expected.items()}, abs=1e-4)
    ranked = sorted(expected, key=lambda i: (-expected[i], -catalog.data.names.trust[i], -catalog.data.stats.density[i], i))
    assert [h.id for h in hits] == ranked
