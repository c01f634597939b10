"""Precomputed document embeddings: read an .npy file without copying it, verify it against the model
before an index is built from it (a shape, NaN rows, and a re-embedded sample of rows), and refuse arrays an
SAE cannot train on."""

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
    _check_finite(emb, "precomputed embeddings")
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


def _check_finite(emb: np.ndarray, what: str) -> None:
    """Refuse NaN/inf rows of (n, d) `emb`, scanning in chunks so a memory-mapped file is never copied whole."""
    for start in range(0, emb.shape[0], _CHECK_CHUNK):
        bad = ~np.isfinite(np.asarray(emb[start : start + _CHECK_CHUNK])).all(axis=1)
        if bad.any():
            raise InvalidArgument(f"{what} have NaN or inf values (first bad row: {start + int(np.argmax(bad))})")


def validate_embeddings(x: np.ndarray) -> None:
    """Refuse inputs a SAE cannot train on: not 2-D, empty, or with NaN/inf rows."""
    if x.ndim != 2:
        raise InvalidArgument(f"embeddings must be a 2-D array (rows, dim), got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise InvalidArgument(f"embeddings need at least 2 rows and 1 column, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise InvalidArgument(f"embeddings must be floating point, got dtype {x.dtype}")
    _check_finite(x, "embeddings")
    if not (np.asarray(x[: min(len(x), 65536)]) != np.asarray(x[0])).any():
        # (All rows alike, as for a corpus of identical abstracts: nothing to reconstruct, and the NMSE divides by 0.)
        raise InvalidArgument("embeddings are all the same row: an SAE needs rows that differ")


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK"
_PICKLE_MAGIC = b"\x80"
"""The first byte of a pickle (protocol 2 and up), as pickle.dump writes it."""


def load_embeddings_file(path: str | Path) -> np.ndarray:
    """Memory-map a .npy file of float embeddings (no copy); refuse missing, unreadable or non-npy files."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"embeddings file not found: {path} does not exist or is not a file")
    _check_magic(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        message = " ".join(str(exc).split())
        if "Python objects" in message or "Object arrays" in message:
            raise InvalidArgument(
                f"embeddings file {path} holds Python objects (pickled data), not numbers; "
                "expected a (rows, dim) float16 or float32 array"
            ) from None
        if "mmap length" in message:
            message = "the file is shorter than its header says (cut off while copying?)"
        raise InvalidArgument(f"cannot read embeddings file {path} as a .npy array: {message}") from None
    if not isinstance(arr, np.ndarray):
        raise InvalidArgument(
            f"embeddings file {path} is not a single .npy array (an .npz archive?); expected one .npy array"
        )
    if arr.dtype.kind != "f":
        raise InvalidArgument(
            f"embeddings file {path} holds {arr.dtype} values; expected floating point (float16, float32 or float64)"
        )
    return arr


def _check_magic(path: Path) -> None:
    """Refuse a file that is not a .npy (or .npz) by its first bytes. Left to numpy, anything else is taken
    for pickled data, and numpy's refusal then suggests loading it unsafely, which would not help a text file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise InvalidArgument(f"cannot read embeddings file {path}: {exc.strerror or exc}") from None
    if head.startswith((_NPY_MAGIC, _ZIP_MAGIC)):
        return
    if not head:
        raise InvalidArgument(f"cannot read embeddings file {path}: it is empty; expected a (rows, dim) float array")
    what = "a pickle of Python objects" if head.startswith(_PICKLE_MAGIC) else "not a .npy file (no NumPy header)"
    raise InvalidArgument(
        f"cannot read embeddings file {path}: it is {what}; expected a (rows, dim) float16 or float32 array "
        "written by numpy.save"
    )
