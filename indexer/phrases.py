"""Readable phrases from a feature's ranked terms: a bigram stands in for its own words, and bigrams that chain
("large language" + "language models") merge into one phrase, so that a name reads as a few concepts and not as
a list of overlapping word pairs."""

from __future__ import annotations

import numpy as np

from indexer.terms import TermMatrix


def select_phrases(
    tm: TermMatrix, ranked: np.ndarray, max_terms: int, max_words: int, scores: np.ndarray | None = None
) -> tuple[list[str], list[int]]:
    """Readable phrases from ranked term ids: a bigram replaces its own unigrams when both are among the
    candidates, and chained bigrams merge ("large language" + "language models" -> "large language models")
    when the second scores at least half the first (given `scores`, aligned with `ranked`).
    Returns the phrases and the term ids they stand for (all used for trust)."""
    score_of = dict(zip(map(int, ranked), scores.tolist() if scores is not None else [1.0] * len(ranked)))
    phrase_score: list[float] = []
    bigram_of: dict[int, int] = {}
    for t in ranked:
        for part in tm.parts[t]:
            if part >= 0 and int(part) not in bigram_of:
                bigram_of[int(part)] = int(t)
    phrases: list[list[str]] = []
    used: list[int] = []
    covered: set[int] = set()
    covered_words: set[str] = set()
    for t in ranked:
        t = int(t)
        if tm.parts[t, 0] < 0:
            if t in covered:
                continue
            t = bigram_of.get(t, t)
        if t in used:
            continue
        words = tm.terms[t].split(" ")
        n_words = sum(map(len, phrases))
        chain = _chain(phrases, words)
        if chain is not None and score_of[t] < 0.5 * phrase_score[phrases.index(chain[0])]:
            # A weak bigram hanging off a strong phrase ("graph kernels" + "kernels foo") is not one concept.
            chain = None
            if words[0] in covered_words and words[1] in covered_words:
                continue
        if chain is not None:
            if n_words + 1 > max_words:
                continue
            phrase, at_end = chain
            if at_end:
                phrase.append(words[1])
            else:
                phrase.insert(0, words[0])
        elif len(phrases) >= max_terms or n_words + len(words) > max_words:
            continue
        else:
            phrases.append(words)
            phrase_score.append(score_of[t])
        used.append(t)
        covered.update(int(p) for p in tm.parts[t] if p >= 0)
        covered.add(t)
        covered_words.update(words)
    return [" ".join(p) for p in phrases], used


def _chain(phrases: list[list[str]], words: list[str]) -> tuple[list[str], bool] | None:
    """The phrase a bigram extends ("large language" + "language models"), and whether at its end."""
    if len(words) != 2:
        return None
    for phrase in phrases:
        if phrase[-1] == words[0] and words[1] not in phrase:
            return phrase, True
        if phrase[0] == words[1] and words[0] not in phrase:
            return phrase, False
    return None
