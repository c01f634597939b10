import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.codes import SparseCodes
from indexer.concepts import ConceptConfig, build_concepts, discriminant_probes
from indexer.errors import InvalidArgument


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), shrinkage=st.floats(0.0, 1.0))
def test_probes_read_one_on_their_own_documents(seed, shrinkage):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(60, 5)).astype(np.float32)
    labels = np.zeros((3, 60), dtype=np.float32)
    labels[0, :10] = 1
    labels[1, rng.choice(60, 25, replace=False)] = 1
    labels[2] = 1  # the whole corpus has no direction
    u, mu = discriminant_probes(emb, sp.csr_matrix(labels), shrinkage)
    np.testing.assert_allclose(mu, emb.mean(0), atol=1e-5)
    for i in (0, 1):
        m = emb[labels[i] > 0].mean(0)
        assert float((m - mu) @ u[i]) == pytest.approx(1.0, abs=1e-3)
    assert not u[2].any()


def test_built_concepts_find_each_planted_word(concepts, tiny_index):
    names = tiny_index.names.names
    live = np.flatnonzero(tiny_index.stats.density > 0)
    assert all(concepts.concept_term(f) == names[f].split()[0] for f in live)
    # The probe of feature 5 reads high on documents mentioning topic5 and low elsewhere.
    has = np.array(["topic5 " in t + " " for t in tiny_index.corpus.texts()])
    level = (tiny_index.embeddings - concepts.mean) @ concepts.probes[5]
    assert level[has].mean() == pytest.approx(1.0, abs=0.05) and abs(level[~has].mean()) < 0.2


def test_a_word_is_looked_up_in_any_form(concepts):
    import unicodedata

    r = concepts.row("topic1")
    assert r >= 0 and concepts.row("topic1s") == r  # its plural
    assert concepts.row("\uff54\uff4f\uff50\uff49\uff43\uff11") == r  # "ｔｏｐｉｃ１", full width
    assert concepts.row(unicodedata.normalize("NFD", "tópic1")) == r  # an accent, decomposed


def test_other_word_names_a_concept_term_that_the_features_read_differently(rng):
    # Feature 0 fires on the 20 street-and-road documents and on 3 of the 30 that say "ligo", which feature 1 reads.
    words = ["street road"] * 20 + ["ligo"] * 3 + ["ligo"] * 27 + ["gamma"] * 40
    fires = np.array([0] * 23 + [1] * 27 + [2] * 40)
    texts = [f"document {i} about {w} things" for i, w in enumerate(words)]
    codes = SparseCodes(indices=fires[:, None].astype(np.int32), values=np.ones((90, 1), np.float32), n_features=3)
    c = build_concepts(texts, codes, rng.normal(size=(90, 8)).astype(np.float32))
    own = c.concept_term(0)
    assert own in ("street", "road")
    assert c.other_word(0, "ligo") == own  # "ligo" leads to feature 0 only by its 3 documents
    assert c.other_word(0, "road") is None and c.other_word(0, "street") is None  # one topic, read alike
    assert c.other_word(0, "no-such-word") is None and c.other_word(1, "ligo") is None


def _alpha_corpus(rng, other: str, word: str = "alpha"):
    """Feature 0 fires on 20 documents: 15 say `word`, 5 say only `other`; feature 1 fires on the "beta" ones."""
    words = [word] * 15 + [other] * 5 + ["beta"] * 20 + ["gamma"] * 40
    texts = [f"document {i} about {w} things" for i, w in enumerate(words)]
    fires = np.array([0] * 20 + [1] * 20 + [2] * 40)
    codes = SparseCodes(indices=fires[:, None].astype(np.int32), values=np.ones((80, 1), np.float32), n_features=3)
    return texts, codes, rng.normal(size=(80, 8)).astype(np.float32)


def test_has_word_marks_the_documents_with_one_of_the_features_words(rng):
    texts, codes, emb = _alpha_corpus(rng, "alef")
    docs = np.arange(80)
    # word_min 1: only the concept term counts; a lower one adds "alef", which feature 0 is the first hit of.
    only = build_concepts(texts, codes, emb, ConceptConfig(word_min=1.0))
    assert only.concept_term(0) == "alpha"
    np.testing.assert_array_equal(np.flatnonzero(only.has_word(0, docs)), np.arange(15))
    wider = build_concepts(texts, codes, emb, ConceptConfig(word_min=0.1))
    np.testing.assert_array_equal(np.flatnonzero(wider.has_word(0, docs)), np.arange(20))
    np.testing.assert_array_equal(np.flatnonzero(wider.has_word(1, docs)), np.arange(20, 40))


def test_singular_and_plural_are_one_word(rng):
    texts, codes, emb = _alpha_corpus(rng, "alphas")
    c = build_concepts(texts, codes, emb, ConceptConfig(word_min=1.0))
    # The plural's documents count for the singular: feature 0 covers all 20 of them with precision 1.
    assert c.row("alphas") == c.row("alpha") >= 0 and c.df[c.row("alpha")] == 20
    np.testing.assert_array_equal(np.flatnonzero(c.has_word(0, np.arange(80))), np.arange(20))


def test_a_features_words_include_their_other_forms(rng):
    texts, codes, emb = _alpha_corpus(rng, "robotic", word="robot")
    c = build_concepts(texts, codes, emb, ConceptConfig(word_min=1.0))
    # Only the concept term is a word at word_min 1, and "robotic" counts as a form of it.
    assert c.concept_term(0) == "robot"
    np.testing.assert_array_equal(np.flatnonzero(c.has_word(0, np.arange(80))), np.arange(20))
    np.testing.assert_array_equal(np.flatnonzero(c.has_word(1, np.arange(80))), np.arange(20, 40))


def test_a_corpus_of_a_few_documents_gives_firing_probes(rng):
    texts = ["one short text", "another short text", "a third"]
    codes = SparseCodes(np.array([[0], [1], [0]], dtype=np.int32), np.ones((3, 1), np.float32), n_features=2)
    concepts = build_concepts(texts, codes, rng.normal(size=(3, 4)).astype(np.float32))
    assert (concepts.probe_term == -1).all() and np.isfinite(concepts.probes).all()


def test_common_words_are_not_concepts(concepts):
    # "synthetic" is in every document of the tiny corpus.
    assert concepts.row("synthetic") == -1 and concepts.row("topic3") >= 0


def test_config_and_input_validation(tiny_index):
    for bad in (
        dict(min_df=0), dict(max_df=0.0), dict(per_term=0), dict(min_f1=2.0), dict(shrinkage=-0.1), dict(chunk=0),
        dict(min_overlap=1.5), dict(min_lift=-1.0),
    ):
        with pytest.raises(InvalidArgument):
            ConceptConfig(**bad)
    assert ConceptConfig().effective_min_df(300) == 3 and ConceptConfig().effective_min_df(10**6) == 10
    codes = SparseCodes(tiny_index.codes.indices[:5], tiny_index.codes.values[:5], tiny_index.codes.n_features)
    with pytest.raises(InvalidArgument, match="align"):
        build_concepts(tiny_index.corpus.texts(), codes, tiny_index.embeddings)


@pytest.mark.parametrize("prebuilt_min_df", [1, 2, 5])
def test_a_prebuilt_term_matrix_gives_the_same_concepts(concepts, tiny_index, prebuilt_min_df):
    from indexer.terms import build_term_matrix

    texts = tiny_index.corpus.texts()
    # A matrix with a lower min_df is filtered; one with a higher min_df lacks terms and is rebuilt.
    again = build_concepts(texts, tiny_index.codes, tiny_index.embeddings, terms=build_term_matrix(texts, prebuilt_min_df))
    assert again.terms == concepts.terms
    for a in ("df", "features", "precision", "recall", "probe_term", "probes", "mean"):
        np.testing.assert_array_equal(getattr(again, a), getattr(concepts, a))


@settings(max_examples=40, deadline=None)
@given(
    features=st.lists(st.integers(0, 23), min_size=1, max_size=6),
    docs=st.lists(st.integers(0, 239), max_size=60),
)
def test_has_words_matches_has_word_feature_by_feature(concepts, features, docs):
    # Any order and repeats: a suppression's candidates come in the dense index's order, not sorted.
    docs = np.array(docs, dtype=np.int64)
    expected = np.stack([concepts.has_word(f, docs) for f in features], axis=1).reshape(len(docs), len(features))
    np.testing.assert_array_equal(concepts.has_words(features, docs), expected)
