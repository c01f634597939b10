"""What a search tells its user about how it read the steer terms (`SearchOutcome.notes`): where a term does less
than its words or its weight suggest, or follows another word. Pure functions of resolved terms; indexer/search.py
adds them."""

from __future__ import annotations

from collections.abc import Callable, Set

from indexer.catalog import name_key
from indexer.steer import DEFAULT_METHOD, WORD_METHODS
from indexer.steer_terms import ResolvedSteer
from indexer.wordsearch import words_held

REWRITE_UNCHANGED = 0.99999
"""Cosine to the query above which a rewritten query is the query itself: words added past the model's word-piece
limit (256 for the default model) are cut (any word it reads moves the vector more)."""


def term_notes(
    resolved: list[ResolvedSteer], method: str, excluded: Set[int], threshold: float, terms: list[list[str]],
    other_word: Callable[[int, str], str | None],
) -> list[str]:
    """Notes on the steer terms of one search: a boost of only features that `excluded` (the exclude filter's
    features, firing above `threshold` x p90) shuts out, and free-text concepts that steer by less than their words
    or by another word (`concept_note`; not under the methods that steer by the words themselves). `terms`: each
    feature's distinctive terms; `other_word`: a feature's concept term, which the default method steers by, when the
    features read it differently from a term (`Concepts.other_word`)."""
    notes = [
        f"steer.{i} boosts only features that exclude names, so it can lift only documents where they do not fire"
        + (f" above {threshold:g} x their p90" if threshold > 0 else "")
        for i, r in enumerate(resolved)
        if r.term.weight > 0 and r.features and {f.id for f in r.features} <= excluded
    ]
    if method not in WORD_METHODS:
        by_word = other_word if method == DEFAULT_METHOD else None
        notes += [n for i, r in enumerate(resolved) if r.term.concept is not None and r.features
                  and (n := concept_note(i, r, terms[r.features[0].id], by_word))]
    return notes


def concept_note(
    i: int, r: ResolvedSteer, feature_terms: list[str], other_word: Callable[[int, str], str | None] | None = None
) -> str:
    """What free-text concept `steer.i` follows when that is less than its words or another word, or "": a term that
    covers only part of them; a feature whose concept term the features read differently from that term
    (`other_word`, given when the method steers by the concept term): "LIGO" leads to a feature that fires on LIGO
    and street-view papers alike and stands for "street"; or (GET /features: score below 1) words of its feature's
    name or distinctive terms `feature_terms`."""
    f, match = r.features[0], r.matched_term
    if name_key(f.name) == name_key(r.text):  # the feature's own name: the words say which feature, in full
        return ""
    if match is not None:
        said = []
        if match.coverage < 1 - 1e-6:
            # Other parts may lead to features of their own; the term steers by the one that leads best, alone.
            said.append(f"the words {r.text!r} are read by their part {match.term!r}, which leads to feature {f.id} "
                        f"({f.name!r}); the other words do not steer")
        if other_word is not None and (own := other_word(f.id, match.term)) is not None:
            said.append(f"feature {f.id} ({f.name!r}) fires on {match.recall:.0%} of the abstracts that say "
                        f"{match.term!r}, and steers by those that say its own word, {own!r}, which the features read "
                        "differently (GET /features?q= lists the other features for the words)")
        return f"steer.{i}: " + "; ".join(said) if said else ""
    held, missing = (", ".join(map(repr, w)) for w in words_held(r.text, f.name, feature_terms))
    return (f"steer.{i}: the words {r.text!r} predict where no feature fires; it steers feature {f.id} ({f.name!r}), "
            f"whose name or distinctive terms hold {held}" + (f" but not {missing}" if missing else ""))


def rewrite_notes(resolved: list[ResolvedSteer], unchanged: list[ResolvedSteer]) -> list[str]:
    """Notes for the "rewrite" terms whose rewritten query embeds as the query itself (`REWRITE_UNCHANGED`), each
    numbered by its place among `resolved` (the same object, not an equal one)."""
    place = {id(r): i for i, r in enumerate(resolved)}
    return [
        f"steer.{place[id(r)]}: the rewritten query embeds as the query itself (the model reads a text only up to its "
        "word-piece limit, 256 for the default model, and this query reaches it, so the words added at its end are "
        "cut); this term changes nothing"
        for r in unchanged
    ]


def turned_notes(along: float) -> list[str]:
    """A note when a query edit points the query away from itself (its cosine with the query, `along`, below 0):
    steering away from words much like the query's own, at a weight past where they cancel it."""
    if along >= 0:
        return []
    return [f"steer: the terms turn the query around (the edited query's cosine with it is {along:.2f}), so the "
            "results are documents unlike the query; a smaller weight keeps it"]


def listed_notes(resolved: list[ResolvedSteer], listed: int) -> list[str]:
    """Notes for the steer terms whose `features` a response cuts to the first `listed`."""
    return [
        f"steer.{i} lists the first {listed} of the {len(r.features)} features it resolved to (the family's parent, "
        f"then its children strongest first); GET /families/{r.family.id if r.family else '{id}'} lists them all"
        for i, r in enumerate(resolved) if len(r.features) > listed
    ]
