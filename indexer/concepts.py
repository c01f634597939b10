"""Concepts: which words each feature stands for, measured over the corpus, and a linear probe per feature that
says how strongly a document expresses that concept. Built once per index; read by the catalog (feature search
puts the feature that best *means* a word first) and by steering (indexer/steer.py scores documents with the
probes).

Word-feature agreement (indexer/agreement.py). For every term t (unigram or bigram of `terms.build_term_matrix`,
its singular and plural counted as one: `wordforms.merge_inflections`) found in at least `min_df` documents and
every feature f: precision P = share of the documents where f fires that contain t, and recall R = share of the
documents containing t where f fires. Each term keeps the `per_term` features of highest F1 = 2PR / (P + R).

Probe. A feature's *concept term* is the word it is the best handle for: among the terms whose feature search
(`wordsearch.rank_by_word`) returns it first, the one where it scores highest; a feature that is no term's first hit
takes the term where its F1 is highest (if at least `min_f1`); either is kept only while it is tied to the feature
(`agreement.trusted_terms`: shared documents, overlap, lift). So searching a word and steering with the first hit
steers that word. The probe u_f of feature f is the linear discriminant between the documents containing its concept
term and the whole corpus, u_f = S^-1 (m_t - mu), with S the corpus covariance of the embeddings shrunk toward a
multiple of the identity, scaled so that (m_t - mu) . u_f = 1: a document's *concept strength* (e - mu) . u_f is
then about 0 for an average document and about 1 for a typical document containing the word. Why a word rather than
the feature's own firing: a TopK feature fires on a narrow, noisy slice of what its word means (the dictionary
splits a topic among many latents), while the word's documents gather the whole concept, siblings and sub-topics
included. On the shared corpus the word probe separates the steering benchmark's concept documents from their
neighbours better (AUROC 0.90) than the feature's decoder direction (0.85), its firing documents' discriminant
(0.85) or the embedding of the bare word (0.88) (BENCHMARKS.md). A feature with no concept term gets its probe from
the documents it fires on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from indexer.agreement import (
    best_f1, best_terms, f1_score, first_hit_terms, profile_overlap, term_feature_table, trusted_terms, word_scores,
)
from indexer.codes import SparseCodes, firing_matrix, postings_at
from indexer.errors import InvalidArgument
from indexer.terms import TermMatrix, build_term_matrix, in_postings
from indexer.wordforms import fold, inflection_key, merge_inflections, stem_groups

log = logging.getLogger(__name__)


RELATED = 0.1
"""`agreement.profile_overlap` below which the features read two words differently (`Concepts.other_word`). On the
full shared corpus: "ligo" and "street" 0.02, "naive bayes" and "indonesian" 0.06, "education" and "tutoring" 0.05,
"malware" and "malicious" 0.08, against 0.2 to 0.8 for "sun" and "solar", "clients" and "server", "medical" and
"clinical", "diffusion models" and "diffusion". Of the 267 concepts of the steering benchmarks' cases and QA, 11
resolve to a feature whose concept term is such another word for their matched term."""


@dataclass
class ConceptConfig:
    """How concept terms and probes are measured."""

    min_df: int = 10
    """Terms in fewer documents are not concepts (capped at 1% of a small corpus, and at least 2)."""
    max_df: float = 0.5
    """Terms in more than this share of the documents say nothing about a topic and are left out."""
    per_term: int = 16
    """Features kept per term, highest F1 first."""
    min_f1: float = 0.05
    """A feature whose best term has a lower F1 gets its probe from its own firing documents."""
    shrinkage: float = 0.1
    """Weight of the identity in the shrunk covariance of the probes (0 = plain covariance)."""
    min_overlap: float = 0.05
    """A concept term must hold at least this share of the feature's documents, or the feature fire on at least
    this share of the term's documents (`trusted_terms`)."""
    min_lift: float = 3.0
    """A concept term must be at least this many times as common among the feature's documents as in the corpus,
    unless its word score reaches `word_min`, as a broad word's such as "benchmarks" does."""
    word_min: float = 0.2
    """A term is one of a feature's words (lexical evidence for steering) when the feature is its first hit with
    at least this `word_scores` value; the concept term always is."""
    chunk: int = 4000
    """Terms whose feature counts are computed at once (bounds memory to chunk x n_features float32)."""

    def __post_init__(self) -> None:
        if self.min_df < 1:
            raise InvalidArgument(f"min_df must be >= 1, got {self.min_df}")
        if not 0.0 < self.max_df <= 1.0:
            raise InvalidArgument(f"max_df must be in (0, 1], got {self.max_df}")
        if self.per_term < 1:
            raise InvalidArgument(f"per_term must be >= 1, got {self.per_term}")
        if not 0.0 <= self.min_f1 <= 1.0:
            raise InvalidArgument(f"min_f1 must be in [0, 1], got {self.min_f1}")
        if not 0.0 <= self.min_overlap <= 1.0:
            raise InvalidArgument(f"min_overlap must be in [0, 1], got {self.min_overlap}")
        if self.min_lift < 0.0:
            raise InvalidArgument(f"min_lift must be >= 0, got {self.min_lift}")
        if not 0.0 <= self.word_min <= 1.0:
            raise InvalidArgument(f"word_min must be in [0, 1], got {self.word_min}")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise InvalidArgument(f"shrinkage must be in [0, 1], got {self.shrinkage}")
        if self.chunk < 1:
            raise InvalidArgument(f"chunk must be >= 1, got {self.chunk}")

    def effective_min_df(self, n_docs: int) -> int:
        """`min_df` for a corpus of `n_docs` documents."""
        return max(2, min(self.min_df, n_docs // 100))


@dataclass(frozen=True, eq=False)
class Concepts:
    """Word-feature agreement table and per-feature probes of one index."""

    terms: list[str]
    """(n_terms,) terms, unigrams and bigrams, lower case."""
    df: np.ndarray
    """(n_terms,) int32 documents containing each term."""
    features: np.ndarray
    """(n_terms, m) int32 features of highest F1 per term, best first; -1 pads."""
    precision: np.ndarray
    """(n_terms, m) float32 share of the feature's firing documents that contain the term."""
    recall: np.ndarray
    """(n_terms, m) float32 share of the term's documents where the feature fires."""
    probe_term: np.ndarray
    """(n_features,) int32 row of each feature's concept term; -1 when its probe comes from its firing documents."""
    probes: np.ndarray
    """(n_features, d) float32 probe directions (zero for dead features)."""
    mean: np.ndarray
    """(d,) float32 corpus mean embedding mu."""
    word_indptr: np.ndarray
    """(n_features + 1,) int64 offsets into `word_docs`."""
    word_docs: np.ndarray
    """(nnz,) int32 documents containing any of each feature's words, ascending within a feature: the lexical
    evidence steering adds to the probe. A feature's words are its concept term and the terms where its
    `word_scores` value is the highest of all features and at least `ConceptConfig.word_min` (not capped by
    `agreement.undominated`, which only the feature search applies), each in all its forms (`wordforms.stem_keys`)."""
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def f1(self) -> np.ndarray:
        """(n_terms, m) float32 F1 of each (term, feature) pair."""
        return f1_score(self.precision, self.recall).astype(np.float32)

    def row(self, term: str) -> int:
        """Row of `term` (lower case) or of its singular or plural (`inflection_key`), accents and compatibility
        forms aside (`wordforms.fold`), or -1."""
        if not self._index:
            # Built whole, then published in one C-level update: a search in another thread sees the map empty
            # (and builds its own) or complete, never half-filled (which answered -1 for known terms). Two terms of
            # one key ("schrödinger", "schrodinger") leave it to the more common: rows in ascending df, last wins.
            order = np.argsort(self.df, kind="stable").tolist()
            self._index.update({inflection_key(fold(self.terms[i])): i for i in order})
        return self._index.get(inflection_key(fold(term)), -1)

    def concept_term(self, feature: int) -> str | None:
        """The word feature `feature` stands for, or None when its probe is made from its firing documents."""
        r = int(self.probe_term[feature])
        return self.terms[r] if r >= 0 else None

    def other_word(self, feature: int, term: str) -> str | None:
        """`feature`'s concept term when the features read it differently from `term` (a word of the table): their
        recall profiles overlap less than RELATED (`agreement.profile_overlap`). None when the feature has no concept
        term, when it is `term` in any form, or when the two words are read alike."""
        own = int(self.probe_term[feature])
        r = self.row(term)
        if own < 0 or r < 0 or own == r:
            return None
        overlap = profile_overlap(self.features[r], self.recall[r], self.features[own], self.recall[own])
        return self.terms[own] if overlap < RELATED else None

    def has_word(self, feature: int, docs: np.ndarray) -> np.ndarray:
        """(len(docs),) bool: whether each of `docs` contains one of the words of `feature` (binary search)."""
        return in_postings(self.word_docs[self.word_indptr[feature] : self.word_indptr[feature + 1]], docs)

    def has_words(self, features: list[int], docs: np.ndarray) -> np.ndarray:
        """(len(docs), m) bool: `has_word` for each of m features. Several at once read all their word lists in
        one `codes.postings_at` (a 383-feature family over 1,400 candidates: 1.2 ms, against 4.0 ms marking each
        feature's documents in turn and 6.9 ms for a binary search per feature)."""
        docs = np.asarray(docs, dtype=np.int64)
        if len(features) == 1:
            return self.has_word(features[0], docs)[:, None]
        return postings_at(self.word_indptr, self.word_docs, features, docs)

    def best_f1(self) -> np.ndarray:
        """(n_features,) float32 each feature's highest F1 over the table (0 when it is in no term's list)."""
        return best_f1(self.features, self.f1, len(self.probe_term))


def discriminant_probes(emb: np.ndarray, labels: sp.csr_matrix, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """LDA direction of each label row against the corpus. emb (n_docs, d) float32, labels (n_probes, n_docs)
    binary CSR -> probes (n_probes, d) float32 scaled so (m - mu) . u = 1 (zero rows for empty labels), mu (d,)."""
    n, d = emb.shape
    mu = emb.mean(axis=0, dtype=np.float64)
    cov = (emb.T @ emb).astype(np.float64) / n - np.outer(mu, mu)
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
    inv = np.linalg.inv(cov)
    sizes = np.asarray(labels.sum(axis=1)).ravel()
    means = np.asarray(labels @ emb, dtype=np.float64) / np.maximum(sizes, 1)[:, None]
    diff = means - mu
    u = diff @ inv
    scale = np.einsum("ij,ij->i", u, diff)
    # An empty label set, or one that is the whole corpus, has no direction.
    ok = (sizes > 0) & (sizes < n) & (scale > 1e-9)
    u = np.where(ok[:, None], u / np.where(ok, scale, 1.0)[:, None], 0.0)
    return u.astype(np.float32), mu.astype(np.float32)


def build_concepts(
    texts: list[str], codes: SparseCodes, emb: np.ndarray, cfg: ConceptConfig | None = None,
    terms: TermMatrix | None = None,
) -> Concepts:
    """Concept table and probes of a corpus: texts (n_docs,), its sparse codes and (n_docs, d) float32 embeddings.
    `terms` may pass the build's term matrix (e.g. the one names were made from) to skip tokenising again; it is
    used when it holds every term this config needs (its min_df is not above ours)."""
    cfg = cfg or ConceptConfig()
    if len(texts) != codes.n_docs or len(emb) != codes.n_docs:
        raise InvalidArgument(f"texts ({len(texts)}), codes ({codes.n_docs}) and embeddings ({len(emb)}) must align")
    start = time.perf_counter()
    min_df = cfg.effective_min_df(len(texts))
    tm = terms
    if tm is None or tm.n_docs != len(texts) or tm.min_df > min_df:
        tm = build_term_matrix(texts, min_df=min_df)
    all_terms = sp.csr_matrix(
        (np.ones(len(tm.term_docs), dtype=np.float32), tm.term_docs, tm.term_indptr), shape=(tm.n_terms, tm.n_docs)
    )
    shown, merged = merge_inflections(tm.terms, tm.df, all_terms)
    df_all = np.diff(merged.indptr)
    keep = np.flatnonzero((df_all >= min_df) & (df_all <= cfg.max_df * len(texts)))
    by_term, df = merged[keep], df_all[keep]
    firing = firing_matrix(codes)
    feats, prec, rec = term_feature_table(by_term, df, firing, cfg.per_term, cfg.chunk)
    f1 = f1_score(prec, rec)
    by_f1 = best_terms(feats, f1, codes.n_features, cfg.min_f1)
    scores = word_scores(prec, rec, best_f1(feats, f1, codes.n_features)[np.maximum(feats, 0)], df[:, None])
    handle = first_hit_terms(feats, scores, codes.n_features)
    probe_term = trusted_terms(
        np.where(handle >= 0, handle, by_f1).astype(np.int32), feats, prec, rec, scores, df, len(texts),
        cfg.min_overlap, cfg.min_lift, cfg.word_min,
    )
    has_term = probe_term >= 0
    # Each feature's words (`Concepts.word_docs`): its concept term, and the terms it tops with a clear word score.
    top = scores.argmax(axis=1)
    rows = np.arange(len(top))
    clear = np.flatnonzero((scores[rows, top] >= cfg.word_min) & (scores[rows, top] > 0))
    owner = np.concatenate([feats[clear, top[clear]], np.flatnonzero(has_term)])
    term = np.concatenate([clear, probe_term[has_term]])
    own = sp.csr_matrix((np.ones(len(term), dtype=np.float32), (owner, term)), shape=(codes.n_features, len(keep)))
    # A word's other forms count as the word: a user who suppresses "robot" means "robotic" and "robotics" too.
    kept_terms = [shown[t] for t in keep]
    own = own @ stem_groups(kept_terms)
    words = (own @ by_term).tocsr()
    words.data[:] = 1.0
    words.sort_indices()
    # Label documents of each probe: its concept term's documents, or where the feature fires.
    # (A corpus of a few documents can have no term at all: then every probe reads its firing documents.)
    term_rows = by_term[np.maximum(probe_term, 0)] if by_term.shape[0] else sp.csr_matrix((len(probe_term), len(texts)))
    labels = (sp.diags(has_term.astype(np.float32)) @ term_rows).tocsr()
    labels = (labels + sp.diags((~has_term).astype(np.float32)) @ firing.T).tocsr()
    probes, mu = discriminant_probes(np.asarray(emb, dtype=np.float32), labels, cfg.shrinkage)
    log.info(
        "concepts built terms=%d features_with_word=%d seconds=%.1f",
        len(keep), int((probe_term >= 0).sum()), time.perf_counter() - start,
    )
    return Concepts(
        terms=kept_terms, df=df.astype(np.int32), features=feats, precision=prec.astype(np.float32),
        recall=rec.astype(np.float32), probe_term=probe_term, probes=probes, mean=mu,
        word_indptr=words.indptr.astype(np.int64), word_docs=words.indices.astype(np.int32),
    )
