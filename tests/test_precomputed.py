"""Precomputed embeddings against the real packaged model (conftest's session `embedder`): the shared rows
pass, shuffled, misshapen and NaN rows are refused with a message naming the row, and only .npy float files load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.embed import DEFAULT_MODEL
from indexer.errors import EmbeddingMismatch, InvalidArgument
from indexer.precomputed import check_precomputed, load_embeddings_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
N_SHARED = 20


@pytest.fixture(scope="module")
def shared_rows():
    """Texts and precomputed embeddings of the first N_SHARED rows of the shared corpus."""
    from indexer.corpus import load_corpus

    if not (SHARED / "arxiv_abstracts.parquet").is_file():
        pytest.skip("shared data not present")
    corpus, _ = load_corpus(SHARED / "arxiv_abstracts.parquet", limit=N_SHARED)
    emb = load_embeddings_file(SHARED / "embeddings_minilm_f16.npy")
    return corpus.texts(), np.asarray(emb[corpus.source_rows], dtype=np.float32), corpus.ids


@pytest.mark.slow
def test_check_precomputed_accepts_the_shared_rows(embedder, shared_rows):
    texts, emb, ids = shared_rows
    lowest = check_precomputed(embedder, texts, emb, n_check=N_SHARED, ids=ids)
    assert 0.99 <= lowest <= 1.0 + 1e-5


def test_check_precomputed_refuses_shuffled_rows(embedder, shared_rows):
    texts, emb, ids = shared_rows
    with pytest.raises(EmbeddingMismatch) as info:
        check_precomputed(embedder, texts, np.roll(emb, 1, axis=0), n_check=3, ids=ids)
    message = str(info.value)
    assert "cosine" in message and DEFAULT_MODEL in message and "title + '. ' + abstract" in message
    assert any(f"id {i}" in message for i in ids)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda e: e[:-1], "rows"),
        (lambda e: e[:, :100], "dimension 100"),
        (lambda e: e[:, 0], "2-D"),
        (lambda e: e[None], "2-D"),
    ],
)
def test_check_precomputed_refuses_wrong_shapes(embedder, shared_rows, make, fragment):
    texts, emb, _ = shared_rows
    with pytest.raises(InvalidArgument, match=fragment) as info:
        check_precomputed(embedder, texts, make(emb))
    assert not isinstance(info.value, EmbeddingMismatch)


def test_check_precomputed_refuses_nan_rows(embedder, shared_rows):
    texts, emb, _ = shared_rows
    bad = emb.copy()
    bad[7, 3] = np.nan
    with pytest.raises(InvalidArgument, match=r"NaN or inf values \(first bad row: 7\)"):
        check_precomputed(embedder, texts, bad)


def test_load_embeddings_file(tmp_path):
    good = tmp_path / "e.npy"
    np.save(good, np.ones((3, 4), dtype=np.float16))
    arr = load_embeddings_file(good)
    assert isinstance(arr, np.memmap) and arr.shape == (3, 4)
    with pytest.raises(InvalidArgument, match="not found"):
        load_embeddings_file(tmp_path / "none.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(InvalidArgument, match="junk.npy"):
        load_embeddings_file(tmp_path / "junk.npy")
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(InvalidArgument, match="one .npy array"):
        load_embeddings_file(tmp_path / "two.npz")
    np.save(tmp_path / "ints.npy", np.ones((3, 4), dtype=np.int32))
    with pytest.raises(InvalidArgument, match="int32"):
        load_embeddings_file(tmp_path / "ints.npy")


def _write(path: Path, kind: str) -> Path:
    import pickle

    if kind == "text":
        path.write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps([[0.1, 0.2], [0.3, 0.4]]))
    elif kind == "objects":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        np.save(path, np.ones((50, 8), dtype=np.float32))
        path.write_bytes(path.read_bytes()[:300])
    return path


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("text", "it is not a .npy file (no NumPy header); expected a (rows, dim) float16 or float32 array"),
        ("pickle", "it is a pickle of Python objects"),
        ("objects", "holds Python objects (pickled data), not numbers"),
        ("empty", "it is empty"),
        ("truncated", "shorter than its header says"),
    ],
)
def test_load_embeddings_file_says_what_a_file_that_is_no_float_array_is(tmp_path, kind, fragment):
    path = _write(tmp_path / f"{kind}.npy", kind)
    with pytest.raises(InvalidArgument) as info:
        load_embeddings_file(path)
    message = str(info.value)
    assert fragment in message and str(path) in message and "\n" not in message
    # numpy takes any file without its header for a pickle and suggests loading it unsafely: never pass that on.
    assert "allow_pickle" not in message and "unsafe" not in message
    if kind in ("text", "empty", "truncated"):
        assert "pickle" not in message
