"""Readable phrases from ranked terms (`indexer/phrases.py`)."""

import numpy as np

from indexer.phrases import select_phrases
from indexer.terms import build_term_matrix


def test_bigram_replaces_its_unigrams_and_chains_merge() -> None:
    tm = build_term_matrix(["large language models", "dark matter halos", "quasar"], min_df=1)
    ranked = [tm.term_id(t) for t in ("language", "large language", "language models", "dark", "quasar", "dark matter")]
    phrases, used = select_phrases(tm, np.array(ranked), max_terms=3, max_words=5)
    assert phrases == ["large language models", "dark matter"]
    assert set(used) == {tm.term_id("large language"), tm.term_id("language models"), tm.term_id("dark matter")}
    phrases, _ = select_phrases(tm, np.array(ranked), max_terms=3, max_words=3)
    assert phrases == ["large language models"]


def test_a_weak_bigram_does_not_chain_onto_a_strong_phrase() -> None:
    tm = build_term_matrix(["graph kernels svm", "quasar jets"], min_df=1)
    ranked = np.array([tm.term_id(t) for t in ("graph kernels", "kernels svm", "quasar jets")])
    strong_then_weak = np.array([1.0, 0.4, 0.3])
    phrases, used = select_phrases(tm, ranked, max_terms=3, max_words=6, scores=strong_then_weak)
    assert phrases == ["graph kernels", "kernels svm", "quasar jets"]
    phrases, _ = select_phrases(tm, ranked, max_terms=3, max_words=6, scores=np.array([1.0, 0.6, 0.3]))
    assert phrases == ["graph kernels svm", "quasar jets"]
