"""FAISS index over the dense document embeddings (inner product on unit vectors = cosine), and exact top-k
through it: the default index stores the rows in float16, half the bytes of an exact Flat index, so a scan of
115k rows takes about half the time, and `nearest` rescores what it returns with the float32 rows, widening
the search until the stored rows' error bound proves the top k exact."""

from __future__ import annotations

import re
from pathlib import Path

import faiss
import numpy as np

from indexer.errors import InvalidArgument

DEFAULT_FACTORY = "SQfp16"
_EXHAUSTIVE = (faiss.IndexFlat, faiss.IndexScalarQuantizer)
_DECODE_CHUNK = 16384
_TIE = 1e-6
"""Slack for float32 rounding when comparing exact scores with the index's own."""


def faiss_reason(exc: RuntimeError) -> str:
    """FAISS's own explanation in a RuntimeError, without the C++ signature and source path before it (they
    mean nothing to a person choosing an index type) and without the "Error: '<condition>' failed:" prefix
    where a sentence follows it."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", text)
    failed = re.fullmatch(r"Error: (.*?) failed(?:: (.+))?", text)
    if failed:
        text = failed.group(2) or f"{failed.group(1)} failed"
    return text.strip() or type(exc).__name__


def check_factory(factory: str, d: int | None = None) -> None:
    """Refuse an empty FAISS index type and, given the row dimension d, one FAISS cannot make for it. A build
    checks the type as soon as the model gives d, before it embeds the corpus (minutes without precomputed rows)."""
    if not factory.strip():
        raise InvalidArgument(
            "the FAISS index type is empty: give an index_factory string such as SQfp16, Flat or HNSW32"
        )
    if d is not None:
        _make(d, factory)


def _make(d: int, factory: str) -> faiss.Index:
    """An empty index of type `factory` for d-dimensional rows, inner product metric."""
    try:
        return faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        reason = faiss_reason(exc)
        if "could not parse" in reason:
            raise InvalidArgument(f"unknown FAISS index type {factory!r}: {reason}") from None
        raise InvalidArgument(
            f"FAISS index type {factory!r} cannot index {d}-dimensional embeddings: {reason}"
        ) from None


def build_faiss(emb: np.ndarray, factory: str = DEFAULT_FACTORY) -> faiss.Index:
    """Index (n, d) float32 unit rows with `faiss.index_factory(d, factory, METRIC_INNER_PRODUCT)`.
    "SQfp16" (the default) and "Flat" compare the query with every row; approximate types such as "HNSW32" are
    trained here if they need it."""
    x = np.ascontiguousarray(emb, dtype=np.float32)
    check_factory(factory)
    index = _make(x.shape[1], factory)
    try:
        if not index.is_trained:
            index.train(x)
        index.add(x)
    except RuntimeError as exc:  # e.g. IVF1024 trained on 300 rows
        reason = faiss_reason(exc)
        raise InvalidArgument(f"FAISS index type {factory!r} cannot index these {len(x)} rows: {reason}") from None
    return index


def search_faiss(index: faiss.Index, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by inner product for one query q (d,) float32: scores (k',) float32 and rows (k',) int64, best first.
    k' <= min(k, index.ntotal): an index that does not scan every row (IVF probes a few lists) may fill fewer
    slots, and FAISS's -1 padding for the empty ones is dropped here so that no caller reads it as a row."""
    scores, rows = index.search(np.ascontiguousarray(q[None, :], dtype=np.float32), min(k, index.ntotal))
    found = int((rows[0] >= 0).sum())
    return scores[0, :found], rows[0, :found].astype(np.int64)


def code_error(index: faiss.Index, emb: np.ndarray) -> float | None:
    """Largest L2 distance between a row of emb (n, d) float32 and the index's stored copy of it. For a unit
    query it bounds how far any score the index gives is from the exact one (Cauchy-Schwarz). None for index
    types that do not scan every row (HNSW, IVF): their misses are not bounded by any error of the rows."""
    # Keep `index` bound: the downcast view does not own the C++ object.
    kind = faiss.downcast_index(index)
    if not isinstance(kind, _EXHAUSTIVE):
        return None
    if isinstance(kind, faiss.IndexFlat):
        return 0.0
    worst = 0.0
    for start in range(0, index.ntotal, _DECODE_CHUNK):
        stored = index.reconstruct_n(start, min(_DECODE_CHUNK, index.ntotal - start))
        exact = np.asarray(emb[start : start + len(stored)], dtype=np.float32)
        worst = max(worst, float(np.sqrt(((stored - exact) ** 2).sum(axis=1)).max()))
    return worst


def nearest(
    index: faiss.Index, emb: np.ndarray, q: np.ndarray, k: int, error: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of emb (n, d) float32 by inner product with q (d,) float32 (unit norm), best first, with
    exact float32 scores: scores (k',) float32, rows (k',) int64, k' = min(k, n) (fewer only where an IVF
    index's probed lists hold fewer rows). The index (holding emb's rows, maybe lossily) proposes a few more than
    k; with its `code_error` bound the answer is exact: a row it did not return scores at most the lowest score it
    did, plus the error, so once the k-th exact score clears that the top k is proven and otherwise the search
    widens. With error None (HNSW, IVF) the proposals are only rescored."""
    n = index.ntotal
    k = min(k, n)
    want = min(n, k + max(16, k // 16))
    bound = None if error is None else error * float(np.linalg.norm(q)) + _TIE
    while True:
        approx, rows = search_faiss(index, q, want)
        exact = np.take(emb, rows, axis=0) @ q
        order = np.argsort(-exact, kind="stable")[:k]
        if bound is None or want >= n or exact[order[-1]] >= approx[-1] + bound:
            return exact[order].astype(np.float32, copy=False), rows[order]
        want = min(n, want * 4)


def save_faiss(index: faiss.Index, path: str | Path) -> None:
    """Write the index to `path`."""
    faiss.write_index(index, str(path))


def load_faiss(path: str | Path) -> faiss.Index:
    """Read an index written by `save_faiss`."""
    return faiss.read_index(str(path))


def set_search_threads(n: int) -> None:
    """OpenMP threads FAISS uses for the calling thread's searches (OpenMP keeps the count per thread, so a
    server sets it in each worker thread that searches). One query at a time gains little from a second thread,
    and on a small shared machine the threads wait on each other (measured: plain search p50 56 ms with 2
    threads vs 7 ms with 1 under load)."""
    faiss.omp_set_num_threads(max(1, int(n)))
