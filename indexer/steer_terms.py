"""Steer terms: what a search is asked to steer (a feature, a family or a free-text concept, with a weight),
checked and resolved to the features it moves, their shares and their code edits. The formulas that turn resolved
terms into scores are in indexer/steer.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from indexer.catalog import Catalog, FeatureMatch, Ref
from indexer.errors import InvalidArgument, UnknownFeature, located
from indexer.wordsearch import WordMatch, has_text

MAX_WEIGHT = 2.0
STEER_SCALE = 2.0
"""Code edit per unit weight, in multiples of the feature's p90 activation (residual, decode, reported codes)."""


@dataclass(frozen=True)
class SteerTerm:
    """One steering instruction: exactly one of `feature` / `family` / `concept`, and a weight in [-2, 2]."""

    weight: float
    feature: int | str | None = None
    family: int | str | None = None
    concept: str | None = None


@dataclass(frozen=True)
class ResolvedSteer:
    """A steer term after resolution: the features it moves, their shares, and their code edits."""

    term: SteerTerm
    features: list[Ref]
    shares: list[float]
    """Per feature, >= 0, sum of squares 1: a family or concept moves the query about as far as one feature."""
    family: Ref | None
    deltas: list[float]
    """Per feature code edit weight * STEER_SCALE * p90 * share (activation units)."""
    text: str
    """Words the mix and rewrite methods embed."""
    matched_term: WordMatch | None = None
    """For a free-text concept, the term of its text that its feature stands for (`wordsearch.WordMatch`)."""


def _target_count(term: SteerTerm) -> int:
    return sum(v is not None for v in (term.feature, term.family, term.concept))


def resolve_terms(catalog: Catalog, terms: list[SteerTerm], words_only: bool = False) -> list[ResolvedSteer]:
    """Validate steer terms and resolve names, families and free-text concepts to features. With `words_only`
    (the methods in WORD_METHODS), a concept that no feature matches resolves to its words and no features. An
    error names the term it is about ("steer.1: ...")."""
    out: list[ResolvedSteer] = []
    first: dict[tuple, int] = {}
    for i, term in enumerate(terms):
        try:
            r = _resolve(catalog, term, words_only)
            # The same target twice would steer past the documented +-2 (eight copies of a +2 term added 3.2).
            key = ("family", r.family.id) if r.family else tuple(f.id for f in r.features) or ("text", r.text.lower())
            if key in first:
                raise InvalidArgument(
                    f"steers what steer.{first[key]} steers; give each target once, its weights summed (at most "
                    f"{MAX_WEIGHT:g} either way)"
                )
            first[key] = i
            _check_overlap(r, out)
            out.append(r)
        except (InvalidArgument, UnknownFeature) as exc:
            raise located(f"steer.{i}", exc) from None
    return out


def _check_overlap(r: ResolvedSteer, earlier: list[ResolvedSteer]) -> None:
    """Refuse two terms steered the same way that share a feature (a family and one of its members, or a family
    and the family of one of its children, whose parent it holds): its edits would add up past what +-2 allows.
    The other way round is a refinement ("more of this family, less of this member") and stays."""
    for j, other in enumerate(earlier):
        if r.term.weight * other.term.weight <= 0:
            continue
        shared = {f.id for f in r.features} & {f.id for f in other.features}
        if shared:
            raise InvalidArgument(
                f"steers feature {min(shared)} the same way as steer.{j} does (a family holds it); steer one of "
                "the two, or the other the other way"
            )


def _resolve(catalog: Catalog, term: SteerTerm, words_only: bool) -> ResolvedSteer:
    data = catalog.data
    p90 = data.stats.p90
    if _target_count(term) != 1:
        raise InvalidArgument("each steer term names exactly one of 'feature', 'family' or 'concept'")
    if term.concept is not None and not has_text(term.concept):
        raise InvalidArgument("a steer concept must not be blank")
    if not -MAX_WEIGHT <= term.weight <= MAX_WEIGHT:
        raise InvalidArgument(f"steer weight must lie in [-{MAX_WEIGHT:g}, {MAX_WEIGHT:g}], got {term.weight}")
    family, matched = None, None
    if term.family is not None:
        fam = _by_name(catalog.family_id, term.family)
        family = catalog.family_ref(fam)
        members = [int(f) for f in catalog.family_members(fam) if p90[f] > 0]
        shares = [1.0 / np.sqrt(max(len(members), 1))] * len(members)
        text = family.name
    elif term.concept is not None:
        hit = concept_hit(catalog, term.concept, required=not words_only)
        members, shares = ([hit.id], [1.0]) if hit else ([], [])
        matched = hit.matched_term if hit else None
        text = term.concept.strip()
    else:
        f = _by_name(catalog.feature_id, term.feature)
        if p90[f] <= 0 and term.weight != 0:  # weight 0 changes nothing, for any feature
            raise UnknownFeature(f"feature {f} ({data.names.names[f]!r}) never fires, so it cannot steer")
        members, shares = [f], [1.0]
        text = catalog.concepts.concept_term(f) or data.names.names[f]
    deltas = [float(term.weight * STEER_SCALE * p90[f] * s) for f, s in zip(members, shares)]
    return ResolvedSteer(term, [catalog.ref(f) for f in members], shares, family, deltas, text, matched)


def _by_name(lookup: Callable[[int | str], int], ref: int | str) -> int:
    """`lookup(ref)`; a name that nothing has is pointed to the concept form, which reads words as `/features` does."""
    try:
        return lookup(ref)
    except UnknownFeature as exc:
        if exc.unknown_name is None:
            raise
        hint = f'; to steer by these words, give {{"concept": {json.dumps(exc.unknown_name)}}}'
        raise type(exc)(f"{exc}{hint}", suggestions=exc.suggestions) from None


def concept_hit(catalog: Catalog, text: str, required: bool = True) -> FeatureMatch | None:
    """The feature a free-text concept stands for: the first hit of the feature search. One feature, because its
    probe is made from its word's documents and already spans the concept's sub-topics; averaging in the
    probes of runners-up (other words) blurred it (BENCHMARKS.md). None when nothing matches and not `required`."""
    hits = [h for h in catalog.search(text, limit=5) if catalog.data.stats.p90[h.id] > 0]
    if not hits:
        if not required:
            return None
        raise UnknownFeature(f"no feature matches the concept {text!r}; try other words or GET /features?q=...")
    return hits[0]


def code_delta(resolved: list[ResolvedSteer], n_features: int) -> np.ndarray:
    """(n_features,) float32 summed code edit of all terms."""
    delta = np.zeros(n_features, dtype=np.float32)
    for r in resolved:
        for ref, d in zip(r.features, r.deltas):
            delta[ref.id] += d
    return delta
