"""Precomputed document embeddings: read an .npy file without copying it, and verify it against the model
before an index is built from it (a shape, NaN rows, and a re-embedded sample of rows)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from indexer.embed import Embedder, unit_rows
from indexer.errors import EmbeddingMismatch, InvalidArgument

log = logging.getLogger(__name__)

_CHECK_CHUNK = 16384


def check_precomputed(
    embedder: Embedder,
    texts: list[str],
    emb: np.ndarray,
    n_check: int = 8,
    min_cos: float = 0.99,
    seed: int = 0,
    ids: list[str] | None = None,
) -> float:
    """Verify that `emb` ((n_rows, dim) float, row i for texts[i]) was made by `embedder`'s model on
    these texts: refuse a wrong shape or NaN/inf rows, re-embed `n_check` random rows and require a
    cosine >= `min_cos` for each. `ids` (optional, aligned with texts) name the rows in errors.
    Returns the minimum cosine seen."""
    if n_check < 1:
        raise InvalidArgument(f"n_check must be at least 1, got {n_check}")
    if not -1.0 <= min_cos <= 1.0:
        raise InvalidArgument(f"min_cos must be within [-1, 1], got {min_cos}")
    shape = getattr(emb, "shape", None)
    if shape is None or len(shape) != 2:
        raise InvalidArgument(
            f"precomputed embeddings must be 2-D (rows, dim): expected (n, {embedder.dim}), got shape {shape}"
        )
    if shape[0] != len(texts):
        raise InvalidArgument(
            f"precomputed embeddings have {shape[0]} rows but there are {len(texts)} documents: "
            "expected one row per document, in order"
        )
    if shape[1] != embedder.dim:
        raise InvalidArgument(
            f"precomputed embeddings have dimension {shape[1]} but model {embedder.name} gives {embedder.dim}: "
            f"expected shape ({len(texts)}, {embedder.dim}), got {tuple(shape)}"
        )
    if not texts:
        raise InvalidArgument("no documents to check the precomputed embeddings against")
    _check_finite(emb)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(texts), size=min(n_check, len(texts)), replace=False))
    fresh = embedder.embed([texts[i] for i in rows], progress=False)
    given = unit_rows(np.asarray(emb[rows], dtype=np.float32))
    cosines = np.einsum("nd,nd->n", fresh, given)
    worst = int(np.argmin(cosines))
    lowest = float(cosines[worst])
    if lowest < min_cos:
        row = int(rows[worst])
        label = f"row {row} (id {ids[row]})" if ids is not None else f"row {row}"
        raise EmbeddingMismatch(
            f"precomputed embeddings do not match the model: {label} cosine {lowest:.2f} < {min_cos}: were these embeddings "
            f"made with model {embedder.name} on title + '. ' + abstract, in the same row order as the corpus?"
        )
    log.info("precomputed embeddings match %s on %d checked rows (min cosine %.5f)", embedder.name, len(rows), lowest)
    return lowest


def _check_finite(emb: np.ndarray) -> None:
    """Refuse NaN/inf rows, scanning in chunks so a memory-mapped file is never copied whole."""
    for start in range(0, emb.shape[0], _CHECK_CHUNK):
        chunk = np.asarray(emb[start : start + _CHECK_CHUNK])
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            first = start + int(np.argmax(bad))
            raise InvalidArgument(f"precomputed embeddings have NaN or inf values (first at row {first})")


def load_embeddings_file(path: str | Path) -> np.ndarray:
    """Memory-map a .npy file of float embeddings (no copy); refuse missing, unreadable or non-npy files."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"embeddings file not found: {path} does not exist or is not a file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidArgument(f"cannot read embeddings file {path} as a .npy array: {' '.join(str(exc).split())}") from None
    if not isinstance(arr, np.ndarray):
        raise InvalidArgument(
            f"embeddings file {path} is not a single .npy array (an .npz archive?); expected one .npy array"
        )
    if arr.dtype.kind != "f":
        raise InvalidArgument(f"embeddings file {path} holds {arr.dtype} values; expected float16 or float32")
    return arr
