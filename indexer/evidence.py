"""Concept evidence: how strongly each candidate document carries each steered feature's concept, read from the
feature's probe, its words and its own activation, measured from the query neighbourhood's background (the
readings are set out in indexer/steer.py's docstring). Pure numpy over arrays the searcher passes in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORD_EVIDENCE, FIRE_EVIDENCE, FIRE_CAP = 0.5, 0.3, 2.0
MIN_BACKGROUND = 10
"""Candidates without a sign of the concept needed to measure its background level (`background_level`)."""
BACKGROUND_CELLS = 65_536
"""Evidence values (candidates x features) a background is measured over: past that, as for a large family over
its ~1,400 candidates, every n-th candidate stands in for all. A median over ~150 of them moves little, and
sorting 1,400 x 383 values was a quarter of a family boost."""
FACTORED_CELLS, PAIRS_PER_CELL = 250_000, 1 / 64
"""A steer term whose evidence table has at least FACTORED_CELLS (candidate, feature) cells, as a large family's
boost over ~1,400 candidates does, reads it factored (`probe_evidence`) while its features fire on fewer than
PAIRS_PER_CELL of the cells: a 383-feature family boost took 14.8 ms instead of 17.0. Past that share, reading
the pairs one by one costs more than the dense product; on smaller tables the two are within noise
(BENCHMARKS.md, steering by a family)."""


def query_orthogonal(u: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Probe directions u (d, m) float32 with their component along the unit query x (d,) removed, u - x (x . u).
    A document near the query reads the query's own level of the concept (a query about lung nodules reads
    high on a CT probe, and so does every neighbour); read orthogonally, a probe measures how much of the
    concept a document holds beyond what its likeness to the query explains, so a suppress step no longer
    penalises the query's closest neighbours as a block, and a boost favours documents that add the concept.
    On the benchmark this raised boost lift by 0.03 to 0.04 and suppress drop by 0.01 to 0.06 at equal
    fidelity (BENCHMARKS.md)."""
    return (u - np.outer(x, x @ u)).astype(np.float32)


@dataclass(frozen=True)
class Evidence:
    """One steer term's `concept_evidence` over c candidate documents for its m features."""

    value: np.ndarray
    """(c, m) float32, about 1 for a typical document containing the feature's concept term, 0 for the background."""
    direct: np.ndarray
    """(c, m) bool: the document contains one of the feature's words or fires the feature."""
    fired: np.ndarray
    """(c, m) bool: the feature fires on the document."""

    def __getitem__(self, rows: np.ndarray) -> Evidence:
        return Evidence(self.value[rows], self.direct[rows], self.fired[rows])


def concept_evidence(strength: np.ndarray, word: np.ndarray, firing: np.ndarray) -> Evidence:
    """How strongly c candidate documents carry the concepts of m features, in probe units (about
    1 for a typical document containing the concept term): strength (c, m) float32 probe readings (e_d - mu) .
    u_g (u_g read orthogonally to the query), plus WORD_EVIDENCE where word (c, m) bool says the document
    contains one of the feature's words, plus FIRE_EVIDENCE per p90 of the feature's own activation firing
    (c, m) float32 (activation / p90, capped at FIRE_CAP); minus each feature's `background_level` among these
    candidates (every n-th of them past BACKGROUND_CELLS values)."""
    extra, direct, fired = _lexical(word, firing)
    raw = strength + extra
    step = _background_step(raw.size)
    return Evidence((raw - background_level(raw[::step], direct[::step])[None, :]).astype(np.float32), direct, fired)


def _lexical(word: np.ndarray, firing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, m) float32 word and firing evidence, and (c, m) bool: where the document names or fires the feature,
    and where it fires it."""
    # float32 constants keep the evidence in float32: the background's sort takes half as long as in float64.
    extra = np.float32(WORD_EVIDENCE) * word + np.float32(FIRE_EVIDENCE) * np.minimum(firing, np.float32(FIRE_CAP))
    fired = firing > 0
    return extra, np.asarray(word, dtype=bool) | fired, fired


def _background_step(cells: int) -> int:
    """Every how many candidates one stands in for the background (`BACKGROUND_CELLS`)."""
    return -(-cells // BACKGROUND_CELLS) or 1


@dataclass(frozen=True)
class ProbeEvidence:
    """What `concept_evidence` gives, kept factored for a term of many features (a family): value = emb @ probes.T
    - offset + extra, formed only for the rows asked for. The dense (c, m) reading was the largest single cost
    of a family boost (1,400 candidates x 383 probes x 384 dimensions); a term's level needs only one matrix-vector
    product, the word evidence, and the readings of the members that fire on a document (`steer.term_level`)."""

    emb: np.ndarray
    """(c, d) float32 candidates' embeddings."""
    probes: np.ndarray
    """(m, d) float32 the features' probes, read orthogonally to the query."""
    offset: np.ndarray
    """(m,) float32 the corpus mean's reading plus the background (`background_level`)."""
    extra: np.ndarray
    """(c, m) float32 word and firing evidence, 0 where `direct` is false."""
    direct: np.ndarray
    """(c, m) bool: the document contains one of the feature's words or fires the feature."""
    fired: np.ndarray
    """(c, m) bool: the feature fires on the document."""

    def __getitem__(self, rows: np.ndarray) -> Evidence:
        value = self.emb[rows] @ self.probes.T - self.offset + self.extra[rows]
        return Evidence(value.astype(np.float32), self.direct[rows], self.fired[rows])


def probe_evidence(
    emb: np.ndarray, probes: np.ndarray, mu: np.ndarray, word: np.ndarray, firing: np.ndarray
) -> ProbeEvidence:
    """`concept_evidence` of c candidates with embeddings emb (c, d) for m features with probes (m, d) read
    orthogonally to the query and corpus mean mu (d,), factored (`ProbeEvidence`); word (c, m) bool and firing
    (c, m) float32 as there. The background is read from the same every-n-th candidates."""
    extra, direct, fired = _lexical(word, firing)
    step = _background_step(extra.size)
    mean_reading = probes @ mu
    sample = emb[::step] @ probes.T - mean_reading + extra[::step]
    offset = mean_reading + background_level(sample, direct[::step])
    return ProbeEvidence(emb, probes, offset.astype(np.float32), extra.astype(np.float32), direct, fired)


def read_evidence(
    emb: np.ndarray, u: np.ndarray, mu: np.ndarray, word: np.ndarray, firing: np.ndarray
) -> Evidence | ProbeEvidence:
    """The searcher's reading: `concept_evidence` of c candidates with embeddings emb (c, d) for m features with
    probes u (d, m) read orthogonally to the query, corpus mean mu (d,), word (c, m) bool and firing (c, m)
    float32: factored (`probe_evidence`) for a table of at least FACTORED_CELLS cells of which fewer than
    PAIRS_PER_CELL are fired, as a large family's boost has; dense otherwise."""
    # `steer.term_level` reads the fired pairs one by one (activations are never negative: nonzero is fired).
    if firing.size >= FACTORED_CELLS and np.count_nonzero(firing) < PAIRS_PER_CELL * firing.size:
        return probe_evidence(emb, np.ascontiguousarray(u.T), mu, word, firing)
    # (e - mu) . u without materialising the centred candidates.
    return concept_evidence(emb @ u - mu @ u, word, firing)


def background_level(evidence: np.ndarray, direct: np.ndarray) -> np.ndarray:
    """(m,) float32 median evidence (c, m) of the candidates that neither contain the feature's words nor fire
    it (`Evidence.direct` (c, m) bool false); 0 where fewer than MIN_BACKGROUND candidates are such. A query's
    neighbours share its topic, and so read a little of every concept near it even where they do not carry it
    (on the benchmark, neighbours of "lung nodule detection" without "CT" read 0.34 in median):
    measured from this level, a suppression no longer pushes them out along with the carriers, and a boost
    asks for the concept beyond what the neighbourhood already holds. On the benchmark, with the words' other
    forms (`wordforms.stem_keys`), this raised suppress drop at fidelity 0.87 by 0.04 on the held-out and blind
    cases and left the tuning cases unchanged (BENCHMARKS.md)."""
    clean = ~direct
    n = clean.sum(axis=0)
    if len(evidence) == 0:
        return np.zeros(evidence.shape[1], dtype=np.float32)
    # All columns at once: the others sorted to the end, then each column's middle one or two of its n values
    # (a loop of np.median took 17 ms for a 383-feature family over 1,400 candidates, this 8 ms).
    ranked = np.sort(np.where(clean, evidence, np.inf), axis=0)
    low = np.take_along_axis(ranked, np.maximum((n - 1) // 2, 0)[None, :], axis=0)[0]
    high = np.take_along_axis(ranked, np.maximum(n // 2, 0)[None, :], axis=0)[0]
    return np.where(n >= MIN_BACKGROUND, (low + high) / 2, 0.0).astype(np.float32)
