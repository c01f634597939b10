import numpy as np
import pytest

from indexer.codes import SparseCodes
from indexer.concepts import build_concepts
from indexer.terms import tokenize
from indexer.wordsearch import has_text, initials, rank_by_word, text_terms


def _scores(matches):
    return {f: m.score for f, m in matches.items()}


def test_rank_by_word(concepts, tiny_index):
    best, n = concepts.best_f1(), len(tiny_index.corpus)
    scores = _scores(rank_by_word(concepts, "Topic7!", best, n))
    assert max(scores, key=scores.get) == 7 and 0 < scores[7] <= 1
    assert rank_by_word(concepts, "nothing known here", best, n) == {}


def test_a_match_says_which_term_and_how_it_overlaps_the_feature(concepts, tiny_index):
    # Counted document by document: the share of the term's documents where the feature fires, and of the
    # feature's documents that hold the term.
    texts, codes = tiny_index.corpus.texts(), tiny_index.codes
    matches = rank_by_word(concepts, "about topic1 topic2", concepts.best_f1(), len(texts))
    assert matches[1].term == "topic1" and matches[2].term == "topic2" and len(matches) > 2
    for f, m in matches.items():
        has = np.array([m.term in tokenize(t) for t in texts])
        fires = ((codes.indices == f) & (codes.values > 0)).any(axis=1)
        assert (m.recall, m.precision) == pytest.approx(((has & fires).sum() / has.sum(), (has & fires).sum() / fires.sum()))


def _lensing_corpus(rng, phrase_fires: int):
    """Feature 0 fires on `phrase_fires` of the 20 "weak lensing" documents (features 4, 5, ... one each on the
    others) and on 60 fillers, feature 1 on the "strong lensing" ones, feature 2 on the "weak supervision" ones:
    each word alone leads elsewhere."""
    words = ["weak lensing"] * 20 + ["strong lensing"] * 40 + ["weak supervision"] * 40 + ["gamma"] * 100
    texts = [f"document {i} about {w} things" for i, w in enumerate(words)]
    rest = list(range(4, 24 - phrase_fires))
    fires = np.array([0] * phrase_fires + rest + [1] * 40 + [2] * 40 + [0] * 60 + [3] * 40)
    codes = SparseCodes(indices=fires[:, None].astype(np.int32), values=np.ones((200, 1), np.float32), n_features=24)
    c = build_concepts(texts, codes, rng.normal(size=(200, 8)).astype(np.float32))
    return _scores(rank_by_word(c, "weak lensing", c.best_f1(), 200))


def test_a_two_word_term_is_read_as_itself_when_a_feature_covers_it(rng):
    # Feature 0 is imprecise for "weak lensing" (20 of its 80 documents) but fires on all of them; each word alone
    # is a precise handle of another feature, and would win if the words were scored apart.
    scores = _lensing_corpus(rng, phrase_fires=20)
    assert max(scores, key=scores.get) == 0 and set(scores) == {0}
    # Feature 0 fires on 3 of the 20; the phrase's best handle is then a feature that fires on one of them
    # (recall 0.05 < PHRASE_RECALL), which may be chance: the words decide.
    scores = _lensing_corpus(rng, phrase_fires=3)
    assert max(scores, key=scores.get) in (1, 2) and 0 in scores


def test_a_text_the_corpus_writes_hyphenated_is_read_as_that_word(rng):
    # "mixture-of-experts" documents fire feature 0; "mixture" alone leads to feature 1 (Gaussian mixtures) and
    # "experts" to feature 2: read word by word, "mixture of experts" would find them instead.
    words = ["mixture-of-experts"] * 30 + ["gaussian mixture"] * 60 + ["domain experts"] * 60 + ["other"] * 50
    texts = [f"document {i} about {w} things" for i, w in enumerate(words)]
    fires = np.array([0] * 30 + [1] * 60 + [2] * 60 + [3] * 50)
    codes = SparseCodes(indices=fires[:, None].astype(np.int32), values=np.ones((200, 1), np.float32), n_features=4)
    c = build_concepts(texts, codes, rng.normal(size=(200, 8)).astype(np.float32))
    scores = _scores(rank_by_word(c, "Mixture of Experts", c.best_f1(), 200))
    assert max(scores, key=scores.get) == 0 and set(scores) == {0}
    assert text_terms("galaxy's", lambda w: 10, 1000) == [("galaxy", 1.0)]
    assert text_terms("dark-matter", lambda w: 10, 1000) == [("dark matter", 1.0), ("dark-matter", 1.0)]


def _gan_corpus(rng, long_form_fires: int):
    """Feature 0 fires on 40 documents that say "gan" and on `long_form_fires` of the 12 that spell it out; each word
    of "generative adversarial networks" alone is a precise handle of another feature (1, 2, 3)."""
    words = ["we train a gan"] * 40 + ["generative adversarial networks gan"] * 12
    words += ["adversarial attacks"] * 60 + ["generative models"] * 60 + ["neural networks"] * 60
    texts = [f"document {i} about {w} things" for i, w in enumerate(words)]
    fires = np.array([0] * 40 + [0] * long_form_fires + [4] * (12 - long_form_fires) + [1] * 60 + [2] * 60 + [3] * 60)
    codes = SparseCodes(indices=fires[:, None].astype(np.int32), values=np.ones((232, 1), np.float32), n_features=5)
    c = build_concepts(texts, codes, rng.normal(size=(232, 8)).astype(np.float32))
    return _scores(rank_by_word(c, "Generative Adversarial Networks", c.best_f1(), 232))


def test_a_long_form_is_read_as_its_acronym_when_the_acronym_stands_for_it(rng):
    assert initials("generative adversarial networks") == ["gan"]
    assert initials("vision-language models for robots") == ["vmr", "vlmr"]  # "for" is a stop word
    assert initials("weak lensing") == []  # two letters spell too many things
    # Half the long form's documents fire the "gan" feature: read as "gan" alone, the text finds it first, and the
    # words' own features not at all.
    scores = _gan_corpus(rng, long_form_fires=6)
    assert max(scores, key=scores.get) == 0 and not {1, 2, 3} & set(scores)
    # None do (feature 4 fires on them): "gan" means something else in this corpus, and the words decide as before.
    scores = _gan_corpus(rng, long_form_fires=0)
    assert max(scores, key=scores.get) == 4


def test_text_terms_weigh_words_by_idf():
    same = text_terms("dark matter halos", lambda w: 10, 1000)
    assert [t for t, _ in same] == ["dark matter", "matter halos", "dark-matter-halos", "dark", "matter", "halos"]
    np.testing.assert_allclose([c for _, c in same], [2 / 3, 2 / 3, 1, 1 / 3, 1 / 3, 1 / 3])
    # The rarer word carries more of the phrase; shares of single words add up to 1.
    df = {"lip": 10, "reading": 100}
    shares = dict(text_terms("lip reading", df.__getitem__, 1000))
    assert shares["lip"] == pytest.approx(2 * shares["reading"], rel=1e-3)
    assert shares["lip"] + shares["reading"] == pytest.approx(1.0) == shares["lip reading"]


@pytest.mark.parametrize("text", ["", "  ", "\u200b\ufeff", "\u0001", "\ufe0f\ue000", "\u3164\u2800", "\u0300"])
def test_a_text_of_invisible_characters_is_blank(text):
    assert not has_text(text)


@pytest.mark.parametrize("text", ["x", "cafe\u0301", "\u2600\ufe0f flares", "\ufeffdark matter", "\u9280\u6cb3"])
def test_a_text_with_anything_visible_is_not_blank(text):
    assert has_text(text)
