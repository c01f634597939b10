"""Steering: steer terms resolved to features, and what each steering method does to a search. Pure numpy over
arrays the searcher passes in; the searcher (indexer/search.py) retrieves candidates and assembles results.

Methods (`method` of a search):
- "concept" (default): the query vector is left alone and each candidate document's score gets a bonus from
  how strongly the steered concept is present in it. Three readings of feature g in document d, in units where a
  typical document containing g's concept term reads about 1 (indexer/concepts.py), less their background:
      reading_g(d)  = (e_d - mu) . (u_g - x (x . u_g))   the probe: the concept's direction in embedding space,
                                                        read orthogonally to the query x (`query_orthogonal`)
                      + 0.5 [d contains one of g's words]        its concept term or a term it clearly tops,
                                                                 in any of their forms
                      + 0.3 min(z_g(d) / p90_g, 2)      the feature's own activation in d (its code)
      evidence_g(d) = reading_g(d) - median reading_g of the candidates with neither g's words nor g firing
      level_i(d)    = max_g (s_g / max s) evidence_g(d)  over the term's features g (shares s_g) that fire on
                                                         d, if any (a family: any of its sub-topics), and for a
                                                         boost only if the mean below exceeds FAMILY_GATE;
                      else sum_g s_g evidence_g(d) / sum_g s_g    (`_parts`; one feature: its evidence)
      score(d)      = cos(x, e_d) + sum_i weight_i * shape(level_i(d))
  (`Concepts.has_word`, `background_level`). The probe carries synonyms and sub-topics; the words and the code
  make a document that names the concept or fires the feature count for sure; the background is what the
  query's neighbourhood reads without the concept. On the benchmark the three readings together beat the probe
  alone at equal fidelity (BENCHMARKS.md); the 0.5 and 0.3 barely matter between 0.3 and 1.
  Boosting (weight > 0): shape = 0.2 * clip((level - 0.3) / 0.7, 0, 1). Only documents that clearly carry
  the concept earn the bonus (precision matters: the boost decides which documents come in), so weight +1 lets
  such a document overtake any document up to 0.2 more similar to the query without it.
  Suppressing (weight < 0): shape = min(0.35 * max(level, 0), 0.2), linear from 0 up to a cap: every trace of
  the concept costs (recall matters: the penalty decides which documents leave), while a document at or below
  the background keeps its score, so the query's own neighbours without the concept stay first. The cap is a
  price in cosine: at weight -1 a carrier (level >= 0.57) gives way to any document without the concept that
  is at most 0.2 less similar to the query, not to one at any distance (where the concept fills the
  neighbourhood, an uncapped penalty emptied the results). Why these two shapes, and the cap: BENCHMARKS.md,
  steering items 6 and 16.
  Both are linear in the weight, so 0 changes nothing and +-2 doubles the effect. Candidates are the query's
  `POOL` nearest documents plus, for a boost, the `POSTINGS` strongest documents of each boosted term;
  `SUPPRESS_POOL` nearest when every term suppresses.
The four query-edit methods (indexer/edits.py):
- "residual": the code edit z'_f = z_f + weight * STEER_SCALE * p90_f * share carried back to the dense vector,
  x' = normalise(x + sum_f (z'_f - z_f) W_dec[f]) (keeps what the SAE cannot reconstruct).
- "decode": the paper's decode-only edit, x' = normalise(z' W_dec + b_dec). It drops what the SAE cannot
  reconstruct, so any weight but 0 moves the query at once by that error, and the weight adds to it.
- "mix": Weaviate-style moveTo / moveAwayFrom, x' = normalise(x + sum_i weight_i * MIX_BETA * embed(text_i)).
- "rewrite": the query text with a term's text appended, embedded again (r_i for term i), then
  x' = normalise(x + sum_i weight_i (r_i - x)): one term at 1 is its rewritten query, 0.5 halfway (boost only).
The text of a term is the concept text it was given, or the word its feature stands for (its concept term),
or its name.

Every result's score is its plain cosine with the unsteered query plus contributions that add up exactly to
the difference: per steered feature for "concept" (a term's bonus split over its features in proportion to
their parts of the level that agree in sign with it), per steered feature for "residual" and per term for
"mix"/"rewrite" (the edit's dot product with the document after renormalisation, plus one "query
renormalisation" entry), one "query edit" entry for "decode"; at most `results.MAX_CONTRIBUTIONS` of them, largest
first (`results.largest_contributions`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from indexer.catalog import Catalog, FeatureMatch, Ref
from indexer.errors import InvalidArgument, UnknownFeature, located
from indexer.evidence import Evidence, ProbeEvidence
from indexer.wordsearch import WordMatch, has_text

METHODS = ("concept", "residual", "decode", "mix", "rewrite")
WORD_METHODS = ("mix", "rewrite")
"""Methods that steer by a term's words alone, so a free-text concept that no feature matches still steers."""
DEFAULT_METHOD = "concept"
MAX_WEIGHT = 2.0
STEER_SCALE = 2.0
"""Code edit per unit weight, in multiples of the feature's p90 activation (residual, decode, reported codes)."""
BOOST_SCALE, BOOST_FLOOR = 0.2, 0.3
SUPPRESS_SCALE, SUPPRESS_CAP = 0.35, 0.2
"""Suppress penalty per unit weight: SUPPRESS_SCALE per unit of level, at most SUPPRESS_CAP of cosine."""
FAMILY_GATE = 0.1
"""For a boost: share-weighted mean evidence over a term's features above which a document that fires one of them
carries the term as strongly as that feature (`_parts`). Below it, the document does not read as the family's
topic: members named for everyday words ("line, lines", "ring, rings" in the astrophysics family) fire on
image-segmentation papers, and a family boost lifted those. One feature's mean is its own evidence, so a single
feature is unaffected; a suppression keeps every trace (BENCHMARKS.md, steering item 33)."""
POOL = 1000
"""Nearest documents rescored by the concept method when a term boosts."""
SUPPRESS_POOL = 300
"""Nearest documents rescored when every term suppresses: a suppression only lowers scores, so its results lie
among the query's nearest few hundred (300 and 1,000 gave the same results on the benchmark, even at weight -2)."""
POSTINGS = 200
"""Strongest documents of each boosting term added to the concept method's candidates, split over the term's
features by their squared shares (a single feature brings 200; each of a 383-member family's features one, so
a family boost rescores about 1,200 documents, not 77,000)."""

Embed = Callable[[str], np.ndarray]


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
    """Refuse two terms steered the same way that share a feature (a family and one of its members, or two
    families one inside the other): its edits would add up past what +-2 allows. The other way round is a
    refinement ("more of this family, less of this member") and stays."""
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


def _parts(ev: Evidence, shares: np.ndarray, gate: float = -np.inf) -> tuple[np.ndarray, np.ndarray]:
    """A term's level (c,) and each feature's part (c, m) of it. A document on which any of the term's features
    fires, and whose share-weighted mean evidence exceeds `gate` (a boost's FAMILY_GATE), carries the term as
    strongly as the strongest of those (share-scaled evidence), all of it that feature's part; any other document
    gets the share-weighted mean of the features' evidence. For one feature both are its evidence. Why not the mean
    everywhere: a family's members are sub-topics, and a document about one of 383 read 1/383 of a typical carrier,
    so a family boost changed nothing (BENCHMARKS.md). Why firing and not also naming a member's word: among a
    family's hundreds of members some word is generic ("simulations" for hydrodynamical simulations), and a boost
    of the galaxy family lifted robot papers that said it."""
    parts = ev.value * (shares / max(float(shares.sum()), 1e-12))[None, :]
    level = parts.sum(axis=1)
    hit = np.flatnonzero(ev.fired.any(axis=1) & (level > gate))
    if len(hit):
        scaled = np.where(ev.fired[hit], ev.value[hit] * (shares / shares.max())[None, :], -np.inf)
        best = scaled.argmax(axis=1)
        level[hit] = scaled[np.arange(len(hit)), best]
        parts[hit] = 0.0
        parts[hit, best] = level[hit]
    return parts, level


def term_level(ev: Evidence | ProbeEvidence, shares: np.ndarray, gate: float = -np.inf) -> np.ndarray:
    """A term's level (c,) float32, as `_parts` defines it, over its m features with shares (m,). From a
    `ProbeEvidence`, the documents on which none of the features fires need only the share-weighted probe and
    words, and the others only their fired features' readings."""
    if isinstance(ev, Evidence):
        return _parts(ev, shares, gate)[1]
    weights = shares / max(float(shares.sum()), 1e-12)
    # The mean of the readings is the reading of the mean probe, plus the mean word evidence (0 where no feature
    # is named or fired).
    level = (ev.emb @ (weights @ ev.probes) - float(ev.offset @ weights) + ev.extra @ weights).astype(np.float32)
    rows, feats = np.nonzero(ev.fired)
    if len(rows):
        value = np.einsum("ij,ij->i", ev.emb[rows], ev.probes[feats]) - ev.offset[feats] + ev.extra[rows, feats]
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        strongest = np.maximum.reduceat(value * (shares / shares.max())[feats], first)
        carries = level[rows[first]] > gate
        level[rows[first][carries]] = strongest[carries]
    return level


def concept_bonus(ev: Evidence | ProbeEvidence, shares: np.ndarray, weight: float) -> np.ndarray:
    """Bonus (c,) float32 of one steer term for c documents, from their `concept_evidence` for the term's m
    features with shares (m,) (see the module docstring for the two shapes). Row by row: a subset of rows gets
    the same bonuses."""
    level = term_level(ev, shares, _gate(weight))
    if weight > 0:
        shaped = BOOST_SCALE * np.clip((level - BOOST_FLOOR) / (1.0 - BOOST_FLOOR), 0.0, 1.0)
    else:
        shaped = np.minimum(SUPPRESS_SCALE * np.maximum(level, 0.0), SUPPRESS_CAP)
    return (weight * shaped).astype(np.float32)


def _gate(weight: float) -> float:
    """The `_parts` gate of a term with this weight: FAMILY_GATE for a boost, none for a suppression."""
    return FAMILY_GATE if weight > 0 else -np.inf


def bonus_split(ev: Evidence, shares: np.ndarray, bonus: np.ndarray) -> np.ndarray:
    """(c, m) float32 split of the `concept_bonus` (c,) of c documents over the term's m features, rows
    summing to the bonus: in proportion to the parts that agree in sign with the term's level (a boost's bonus is
    positive where it is not 0, which says which gate `_parts` applies). Row by row, so a search splits only the
    results it shows (for a 383-feature family, most of the bonus's cost)."""
    parts, level = _parts(ev, shares, _gate(float(bonus.max(initial=0.0))))
    agree = np.where(np.sign(parts) == np.sign(level)[:, None], np.abs(parts), 0.0)
    total = agree.sum(axis=1, keepdims=True)
    split = np.where(total > 0, agree / np.maximum(total, 1e-12), 1.0 / parts.shape[1])
    return (bonus[:, None] * split).astype(np.float32)


def concept_scores(evidence: list[Evidence | ProbeEvidence], resolved: list[ResolvedSteer]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Summed bonus (c,) float32 of c candidate documents under every term, given each term's
    `concept_evidence`, and each term's own bonus (c,)."""
    bonuses = [
        concept_bonus(ev, np.asarray(r.shares, dtype=np.float32), r.term.weight) for ev, r in zip(evidence, resolved)
    ]
    total = np.zeros(len(evidence[0].direct) if evidence else 0, dtype=np.float32)
    for bonus in bonuses:
        total += bonus
    return total, bonuses
