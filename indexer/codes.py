"""Sparse codes of every document and the inverted lists feature -> documents (CSR), with per-feature
statistics. Pure numpy: arrays in, arrays out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class SparseCodes:
    """Top-k SAE code of each document."""

    indices: np.ndarray
    """(n_docs, k) int32 feature ids, each row strongest first."""
    values: np.ndarray
    """(n_docs, k) float32 activations >= 0 (0 means the slot did not fire)."""
    n_features: int
    """Number of SAE latents."""

    @property
    def n_docs(self) -> int:
        return int(self.indices.shape[0])


@dataclass(frozen=True)
class InvertedLists:
    """Feature -> documents where it fires, CSR. Feature f's postings are
    `doc_ids[indptr[f]:indptr[f+1]]`, sorted by activation, strongest first."""

    indptr: np.ndarray
    """(n_features + 1,) int64 offsets."""
    doc_ids: np.ndarray
    """(nnz,) int32 document rows."""
    values: np.ndarray
    """(nnz,) float32 activations > 0."""

    @property
    def n_features(self) -> int:
        return int(len(self.indptr) - 1)

    def postings(self, feature: int) -> tuple[np.ndarray, np.ndarray]:
        """Documents (int32) and activations (float32) of one feature, strongest first."""
        lo, hi = self.indptr[feature], self.indptr[feature + 1]
        return self.doc_ids[lo:hi], self.values[lo:hi]

    def counts(self) -> np.ndarray:
        """(n_features,) int64 number of documents each feature fires on."""
        return np.diff(self.indptr)

    def strongest(self, features: np.ndarray, n: np.ndarray) -> np.ndarray:
        """int32 documents: the n[i] strongest of each features[i] (all of them if it has fewer), concatenated.
        One gather for all the features (a 383-feature family's loop of `postings` took 1.2 ms)."""
        features = np.asarray(features, dtype=np.int64)
        starts = self.indptr[features]
        take = np.minimum(np.asarray(n, dtype=np.int64), self.indptr[features + 1] - starts)
        return self.doc_ids[_slots(starts, take)]


def _slots(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """int64 positions starts[i], ..., starts[i] + lengths[i] - 1 for each i, concatenated: several CSR rows' slots
    in one gather."""
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))


def postings_at(
    indptr: np.ndarray, docs: np.ndarray, features: list[int], rows: np.ndarray, values: np.ndarray | None = None
) -> np.ndarray:
    """(len(rows), m) table of m features' CSR postings (feature f: `docs[indptr[f]:indptr[f+1]]`) read at
    `rows` (any order, repeats allowed): `values` of the posting where f's list holds the row, else 0; with
    values None, bool: whether it holds it. Every posting is looked up at once in a map from document to row,
    so the cost follows the features' total postings, not their number."""
    rows = np.asarray(rows, dtype=np.int64)
    dtype = bool if values is None else values.dtype
    if len(rows) == 0:
        return np.zeros((0, len(features)), dtype=dtype)
    feats = np.asarray(features, dtype=np.int64)
    starts, lens = indptr[feats], indptr[feats + 1] - indptr[feats]
    # The slots of all the features' postings, and the column each belongs to.
    slots = _slots(starts, lens)
    cols = np.repeat(np.arange(len(feats)), lens)
    # Document -> 1 + its (last) position in rows, 0 for the others (np.zeros costs nothing until written, unlike
    # a fill with -1); a repeated row reads the table line of its last copy.
    row_of = np.zeros(int(rows.max()) + 1, dtype=np.int64)
    row_of[rows] = np.arange(1, len(rows) + 1)
    found = docs[slots]
    near = found < len(row_of)
    slots, cols, at = slots[near], cols[near], row_of[found[near]]
    hit = at > 0
    out = np.zeros((len(rows), len(feats)), dtype=dtype)
    out[at[hit] - 1, cols[hit]] = True if values is None else values[slots[hit]]
    return out[row_of[rows] - 1]


def invert(codes: SparseCodes) -> InvertedLists:
    """Build the inverted lists of `codes`, dropping slots that did not fire."""
    n_docs, k = codes.indices.shape
    feats = codes.indices.ravel()
    vals = codes.values.ravel()
    docs = np.repeat(np.arange(n_docs, dtype=np.int32), k)
    live = vals > 0
    feats, vals, docs = feats[live], vals[live], docs[live]
    # Sort by feature, then by activation descending (lexsort: last key is primary).
    order = np.lexsort((-vals, feats))
    counts = np.bincount(feats, minlength=codes.n_features)
    indptr = np.zeros(codes.n_features + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return InvertedLists(indptr=indptr, doc_ids=docs[order], values=vals[order].astype(np.float32))


@dataclass(frozen=True)
class FeatureStats:
    """Per-feature firing statistics over the corpus."""

    density: np.ndarray
    """(n_features,) float32 share of documents where the feature fires."""
    p90: np.ndarray
    """(n_features,) float32 90th-percentile activation where it fires: the activation ranked a tenth of the way
    down its postings, rounding toward the stronger (0 for dead features)."""
    max_activation: np.ndarray
    """(n_features,) float32 strongest activation (0 for dead features)."""


def feature_stats(inv: InvertedLists, n_docs: int) -> FeatureStats:
    """Density, p90 and max activation of every feature, from its postings."""
    counts = inv.counts()
    p90 = np.zeros(inv.n_features, dtype=np.float32)
    mx = np.zeros(inv.n_features, dtype=np.float32)
    for f in np.flatnonzero(counts):
        _, vals = inv.postings(int(f))
        mx[f] = vals[0]
        # Postings are sorted descending, so the 90th percentile sits 10% of the way in.
        p90[f] = vals[int(np.floor(0.1 * (len(vals) - 1)))]
    return FeatureStats(density=(counts / max(n_docs, 1)).astype(np.float32), p90=p90, max_activation=mx)


def firing_matrix(codes: SparseCodes, dtype: type = np.float32) -> sp.csr_matrix:
    """(n_docs, n_features) CSR of `dtype`, 1 where a feature fires on a document (activation > 0)."""
    fired = codes.values > 0
    rows = np.repeat(np.arange(codes.n_docs, dtype=np.int64), codes.indices.shape[1])[fired.ravel()]
    a = sp.csr_matrix(
        (np.ones(len(rows), dtype=dtype), (rows, codes.indices[fired].astype(np.int64))),
        shape=(codes.n_docs, codes.n_features),
    )
    # A top-k code never lists a feature twice, but a malformed one would count double: cap at presence.
    a.data[:] = 1
    return a
