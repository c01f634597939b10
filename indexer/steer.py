"""Steering: what each steering method does to a search, given steer terms resolved to features
(indexer/steer_terms.py). Pure numpy over arrays the searcher passes in; the searcher (indexer/search.py)
retrieves candidates and assembles results.

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
  nearest documents (`candidate_pool`: `POOL`, `FAMILY_POOL` when a family boosts, `SUPPRESS_POOL` when every
  term suppresses) plus, for a boost, the `POSTINGS` strongest documents of each boosted term.
The four query-edit methods (indexer/edits.py):
- "residual": the code edit z'_f = z_f + weight * STEER_SCALE * p90_f * share (steer_terms.py) carried back to
  the dense vector, x' = normalise(x + sum_f (z'_f - z_f) W_dec[f]) (keeps what the SAE cannot reconstruct).
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

from collections.abc import Callable

import numpy as np

from indexer.evidence import Evidence, ProbeEvidence
from indexer.steer_terms import ResolvedSteer

METHODS = ("concept", "residual", "decode", "mix", "rewrite")
WORD_METHODS = ("mix", "rewrite")
"""Methods that steer by a term's words alone, so a free-text concept that no feature matches still steers."""
DEFAULT_METHOD = "concept"
BOOST_SCALE, BOOST_FLOOR = 0.2, 0.3
SUPPRESS_SCALE, SUPPRESS_CAP = 0.35, 0.2
"""Suppress penalty per unit weight: SUPPRESS_SCALE per unit of level, at most SUPPRESS_CAP of cosine."""
FAMILY_GATE = 0.1
"""For a boost: share-weighted mean evidence over a term's features above which a document that fires one of them
carries the term as strongly as that feature (`_parts`). Below it, the document does not read as the family's
topic: members named for everyday words ("line, lines", "ring, rings" in the astrophysics family) fire on
image-segmentation papers, and a family boost lifted those. One feature's mean is its own evidence, so a single
feature is unaffected; a suppression keeps every trace (BENCHMARKS.md, steering item 33)."""
POOL = 500
"""Nearest documents rescored by the concept method when a feature or concept boosts. Against 1,000, all seven
steering sets lifted as much or more at weight 1 (all cases 0.742 @ 0.878 against 0.735 @ 0.877) and at weight 2,
and a boost added 0.4 ms less (BENCHMARKS.md, steering item 34)."""
FAMILY_POOL = 1000
"""Nearest documents rescored when a family boosts: a family is a field, and its papers lie further from the query
than one feature's (with 500, the family categories benchmark's home-field lift fell from 0.056 to 0.039)."""
SUPPRESS_POOL = 300
"""Nearest documents rescored when every term suppresses: a suppression only lowers scores, so its results lie
among the query's nearest few hundred (300 and 1,000 gave the same results on the benchmark, even at weight -2)."""
POSTINGS = 200
"""Strongest documents of each boosting term added to the concept method's candidates, split over the term's
features by their squared shares (a single feature brings 200; each of a 383-member family's features one, so
a family boost rescores about 1,200 documents, not 77,000)."""

Embed = Callable[[str], np.ndarray]


def candidate_pool(active: list[ResolvedSteer]) -> int:
    """How many of the query's nearest documents the concept method rescores for these (non-zero) terms."""
    boosts = [r for r in active if r.term.weight > 0]
    if not boosts:
        return SUPPRESS_POOL
    return FAMILY_POOL if any(r.family is not None for r in boosts) else POOL


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


def bonus_split(ev: Evidence, shares: np.ndarray, bonus: np.ndarray, weight: float) -> np.ndarray:
    """(c, m) float32 split of the `concept_bonus` (c,) that a term of this weight gives c documents, over the
    term's m features, rows summing to the bonus: in proportion to the parts that agree in sign with the term's
    level. Row by row, so a search splits only the results it shows (for a 383-feature family, most of the bonus's
    cost)."""
    parts, level = _parts(ev, shares, _gate(weight))
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
