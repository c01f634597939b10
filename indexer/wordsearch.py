"""Feature search by words: which features a free-text phrase stands for, from the word-feature agreement
table of indexer/concepts.py, and, after those, which features hold its words in their names or distinctive
terms. The catalog ranks `GET /features?q=` with it, and a steer term given as free text resolves through it,
so the feature that best *means* the user's words comes first."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import numpy as np

from indexer.agreement import undominated, word_scores
from indexer.concepts import Concepts
from indexer.terms import is_term_word, plain_letters, tokenize


_INVISIBLE = {"Cc", "Cf", "Co", "Cn", "Cs", "Zs", "Mn", "Me"}
"""Unicode categories that show nothing alone: controls, format characters (zero-width spaces, a BOM), private
use, unassigned, spaces and marks that only modify another character (variation selectors)."""

_BLANK_LETTERS = set("\u115f\u1160\u3164\uffa0\u2800\ufffc")
"""Fillers that Unicode files as letters or symbols yet show nothing (Hangul fillers, a blank Braille cell, the
object replacement character)."""


def has_text(v: str) -> bool:
    """False for a text of only invisible characters: the model would embed it as nothing, and a search would
    answer arbitrary documents. The one blank rule for queries, steer concepts and feature searches."""
    return any(not (c.isspace() or c in _BLANK_LETTERS or unicodedata.category(c) in _INVISIBLE) for c in v)


def _content_words(tokens: list[str]) -> list[str]:
    """The tokens (`terms.tokenize`) that can be (part of) a term, a possessive "'s" dropped."""
    return [w for w in (t.removesuffix("'s") for t in tokens) if is_term_word(w)]


def text_terms(text: str, df: Callable[[str], int], n_docs: int) -> list[tuple[str, float]]:
    """Candidate terms of a free-text phrase with the share of the phrase each covers: adjacent pairs (bigrams)
    first, then the whole text hyphenated (`hyphenated`), then each word of two hyphenated parts read as those two
    words, then single words (a possessive "'s" dropped). A word's share is its IDF, log(n_docs / df), over the
    phrase's total, so in "lip reading" the rarer, more specific "lip" counts more than "reading"; df(word) gives
    0 for a word the index does not know (counted as rare as a word can be)."""
    tokens = tokenize(text)
    words = _content_words(tokens)
    if not words:
        return []
    idf = {w: np.log(n_docs / max(df(w), 1)) + 1e-3 for w in words}
    total = sum(idf[w] for w in words)
    pairs = [(f"{a} {b}", (idf[a] + idf[b]) / total) for a, b in zip(words, words[1:])]
    distinct = list(dict.fromkeys(words))
    # A word of two hyphenated parts may be the corpus's two-word term: "dark-matter" is "dark matter".
    split = [(w.replace("-", " "), idf[w] / total) for w in distinct if w.count("-") == 1]
    return pairs + hyphenated(tokens) + split + [(w, idf[w] / total) for w in distinct]


def hyphenated(tokens: list[str]) -> list[tuple[str, float]]:
    """A text's tokens (`terms.tokenize`) of several words written as one hyphenated word, covering all of it:
    "mixture of experts" is the corpus's "mixture-of-experts" (its stop words kept), "out of distribution" its
    "out-of-distribution"."""
    words = [t for t in tokens if t[0].isalnum()]
    return [("-".join(words), 1.0)] if len(words) > 1 else []


PHRASE_RECALL = 0.15
"""A text that is itself a term (two words, or its words hyphenated) is read as that term alone when the term's best
feature fires on at least this share of the term's documents (`rank_by_word`); a handle that fires on fewer may
share them by chance. A fifth missed the OOD feature (18.4% of "out-of-distribution" abstracts); 0.05 sent phrases
to junk (BENCHMARKS.md, steering item 23)."""


ACRONYM_PRECISION = 0.1
"""A text of three or more words is also read as its initials ("generative adversarial networks" as "gan") when no
term covers it whole, if that acronym is a term whose best feature passes the phrase rule and fires on documents
that say the text's own words: at least this share of them hold one of its two-word parts. Without that check,
initials that also spell another field's acronym ("coronary artery disease" as CAD, computer-aided design) read as
that field (BENCHMARKS.md, steering item 28)."""


def initials(text: str) -> list[str]:
    """The acronyms a text of three or more words could stand for: its words' first letters, and its hyphenated
    words' parts' first letters ("vision-language models": "vm" and "vlm"). Stop words do not count."""
    words = _content_words(tokenize(text))
    if len(words) < 3:
        return []
    return list(dict.fromkeys(["".join(w[0] for w in words), "".join(p[0] for w in words for p in w.split("-") if p)]))


class WordMatch(NamedTuple):
    """Why a feature stands for a text: its score and the term of the text that gave it."""

    score: float
    """In (0, 1]: the share of the text the term covers times `agreement.word_scores`."""
    term: str
    """The index's term (a word or two-word phrase, as the concept table spells it)."""
    precision: float
    """Share of the documents the feature fires on that contain the term."""
    recall: float
    """Share of the documents containing the term that the feature fires on."""
    coverage: float = 1.0
    """The share of the text the term covers (`text_terms`; 1 for the whole text, its acronym included)."""


class _TermHit(NamedTuple):
    """One term of a text found in the concept table, with its features' readings."""

    term: str
    shown: str
    coverage: float
    features: np.ndarray
    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def _term_hit(
    c: Concepts, row: Callable[[str], int], term: str, coverage: float, best_f1: np.ndarray
) -> _TermHit | None:
    """`term`'s features with their `word_scores`, or None when the index does not know the term. A feature that
    another beats on both precision and recall for the term ranks below it (`agreement.undominated`), unless the
    term is its concept term: it then steers by the term's own documents, however few of them it fires on (the
    quadruped feature fires on 9% of "quadruped" abstracts, the broader legged-locomotion one on 68%). So a first
    hit's concept term stays that term, as the index's concept terms were chosen."""
    r = row(term)
    if r < 0:
        return None
    valid = c.features[r] >= 0
    feats, precision, recall = c.features[r][valid], c.precision[r][valid], c.recall[r][valid]
    s = undominated(word_scores(precision, recall, best_f1[feats], c.df[r]), precision, recall,
                    keep=c.probe_term[feats] == r)
    return _TermHit(term, c.terms[r], coverage, feats, s, precision, recall)


def _passes_phrase_rule(t: _TermHit) -> bool:
    """Whether the term's best feature fires on at least PHRASE_RECALL of the term's documents."""
    return len(t.features) > 0 and t.scores.max() > 0 and t.recall[t.scores.argmax()] >= PHRASE_RECALL


def _said_in(acronym: _TermHit, pairs: list[_TermHit]) -> bool:
    """Whether at least ACRONYM_PRECISION of the documents the acronym's best feature fires on hold one of the
    text's two-word parts (`pairs`): the acronym then stands for these words, not for another field's."""
    best = acronym.features[acronym.scores.argmax()]
    return any(t.precision[t.features == best].max(initial=0.0) >= ACRONYM_PRECISION for t in pairs)


def rank_by_word(c: Concepts, text: str, best_f1: np.ndarray, n_docs: int) -> dict[int, WordMatch]:
    """Features the words of `text` stand for, each with its best `WordMatch`: the max over the text's terms of
    the share of the text the term covers times `word_scores`. A text that is itself a term (two words, or its
    words hyphenated), with a feature that fires on at least PHRASE_RECALL of its documents, is read as that term
    alone: "weak lensing" means cosmic shear, not the strong lensing that the word "lensing" alone leads to, and
    "mixture of experts" the MoE feature, not Gaussian mixtures. Failing that, a text of three or more words whose
    initials are a term (`initials`, ACRONYM_PRECISION) is read as that acronym alone: "generative adversarial
    networks" means the GAN feature, not adversarial examples. best_f1 (n_features,) from `Concepts.best_f1`;
    n_docs is the corpus size."""
    row = cache(c.row)  # each word is looked up for its IDF and again as a term
    found: list[_TermHit] = []
    for term, coverage in text_terms(text, lambda w: int(c.df[r]) if (r := row(w)) >= 0 else 0, n_docs):
        hit = _term_hit(c, row, term, coverage, best_f1)
        if hit is not None:
            found.append(hit)
    # A pair (or hyphenated form) that covers the whole text is the text itself: a phrase the index knows.
    phrase = [t for t in found if (" " in t.term or "-" in t.term) and t.coverage >= 1.0 - 1e-6 and len(t.features)]
    if phrase and _passes_phrase_rule(phrase[0]):
        found = phrase
    else:
        pairs = [t for t in found if " " in t.term]
        for acronym in initials(text):
            hit = _term_hit(c, row, acronym, 1.0, best_f1)
            if hit is not None and _passes_phrase_rule(hit) and _said_in(hit, pairs):
                found = [hit]
                break
    matches: dict[int, WordMatch] = {}
    for t in found:
        values = (t.coverage * t.scores).tolist()
        for f, v, p, rec in zip(t.features.tolist(), values, t.precision.tolist(), t.recall.tolist()):
            if v > (matches[f].score if f in matches else 0.0):
                matches[f] = WordMatch(v, t.shown, p, rec, t.coverage)
    return matches


# -- names and distinctive terms: the lexical part of the feature search ---------------------------------------
_NAME_WORD = re.compile(r"[a-z0-9]+")
_FUNCTION_NAME_WORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or over than that the this to via with".split()
)


def name_words(text: str) -> list[str]:
    """The text's words less function words and single letters: "of" is no handle for the name
    "mixture-of-experts", nor the "s" of "galaxy's" for "user's". (Only these: the term list's wider stop words
    hold "key" and "main", which name features such as key-value caches.) Accents and compatibility forms aside
    (`terms.plain_letters`), LaTeX's too: "renyi" and "R\\'enyi" are words of "rényi divergence"."""
    text = plain_letters(text).lower()
    return [w for w in _NAME_WORD.findall(text) if len(w) > 1 and w not in _FUNCTION_NAME_WORDS]


def words_held(text: str, name: str, terms: list[str]) -> tuple[list[str], list[str]]:
    """The words of `text` (`name_words`) that a feature's name or distinctive terms hold, and those they do not:
    what `lexical_index` matched a text on."""
    held = set(name_words(name)).union(*(name_words(t) for t in terms))
    words = list(dict.fromkeys(name_words(text)))
    return [w for w in words if w in held], [w for w in words if w not in held]


_NO_POSTINGS = (np.empty(0, dtype=np.int64), np.empty(0))


def lexical_index(names: list[str], terms: list[list[str]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """word -> (features, weights): 2 where the word is in the feature's name, and 1 / (1 + 0.3 rank) for each
    of its distinctive terms (rank 0 first) that holds the word. A text's lexical score for a feature is the sum
    over its distinct words, over their number."""
    postings: dict[str, list[tuple[int, float]]] = {}
    for i, name in enumerate(names):
        for w in set(name_words(name)):
            postings.setdefault(w, []).append((i, 2.0))
    for i, feature_terms in enumerate(terms):
        for rank, term in enumerate(feature_terms):
            for w in set(name_words(term)):
                postings.setdefault(w, []).append((i, 1.0 / (1.0 + 0.3 * rank)))
    return {w: (np.array([f for f, _ in p], dtype=np.int64), np.array([v for _, v in p])) for w, p in postings.items()}


def lexical_scores(index: dict[str, tuple[np.ndarray, np.ndarray]], words: set[str], n_features: int) -> np.ndarray:
    """(n_features,) float64 in [0, 1): each feature's `lexical_index` sum over the distinct `words` (non-empty),
    over their number, squashed as s / (1 + s)."""
    score = np.zeros(n_features)
    for w in words:
        feats, weights = index.get(w, _NO_POSTINGS)
        np.add.at(score, feats, weights)
    score /= len(words)
    return score / (1.0 + score)
