"""The build pipeline on real abstracts: manifest contents, staleness, and refusal of bad embeddings."""

import json

import numpy as np
import pytest

from indexer.artifacts import load_index
from indexer.errors import EmbeddingMismatch, InvalidArgument
from indexer.pipeline import build_index, is_current
from tests.conftest import make_build_cfg

pytestmark = pytest.mark.slow


def test_manifest_records_provenance(demo_index):
    m = json.loads((demo_index / "manifest.json").read_text())
    assert m["documents"] == 300 and m["model"]["dim"] == 384
    assert m["corpus"]["sha256"] and m["corpus"]["rows_used"] == 300
    assert m["sae"]["k"] == 16 and m["sae"]["n"] == 256 and "train_nmse" in m["sae"]["metrics"]
    assert m["faiss"]["type"] == "SQfp16" and m["embeddings"]["min_cosine"] >= 0.99
    assert set(m["timings_s"]) >= {"corpus", "embeddings", "sae", "codes", "names", "families", "faiss"}
    data = load_index(demo_index)
    # Every document has exactly k code slots and the inverted lists agree with them.
    assert data.codes.indices.shape == (300, 16)
    assert data.inv.counts().sum() == (data.codes.values > 0).sum()


def test_is_current_tracks_inputs_and_settings(demo_index, tmp_path):
    cfg = make_build_cfg(tmp_path)
    cfg.out = demo_index
    assert is_current(cfg)
    cfg.k = 8
    assert not is_current(cfg)
    assert not is_current(make_build_cfg(tmp_path))  # nothing built there yet


def test_misaligned_embeddings_are_refused(tmp_path, embedder):
    emb = np.load(make_build_cfg(tmp_path).embeddings)[:300]
    shuffled = tmp_path / "shuffled.npy"
    np.save(shuffled, np.roll(emb, 1, axis=0))
    with pytest.raises(EmbeddingMismatch, match="cosine"):
        build_index(make_build_cfg(tmp_path, embeddings=shuffled), embedder=embedder)
    short = tmp_path / "short.npy"
    np.save(short, emb[:100])
    with pytest.raises(InvalidArgument, match="rows"):
        build_index(make_build_cfg(tmp_path, embeddings=short), embedder=embedder)
    assert not (tmp_path / "index").exists()


def test_llm_endpoint_names_features_when_configured(tmp_path, embedder):
    from tests.test_llm_names import FakeChat

    fake = FakeChat()
    import threading

    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        cfg = make_build_cfg(tmp_path, limit=120, latents=64, k=8, epochs=5, llm_base_url=fake.url, llm_model="fake")
        data = build_index(cfg, embedder=embedder)
    finally:
        fake.server.shutdown()
        fake.server.server_close()
    live = [n for n, s in zip(data.names.names, data.names.status) if s != "dead"]
    assert fake.requests and all(r["path"].endswith("/chat/completions") for r in fake.requests)
    assert sum(n.lower().endswith("studies") for n in live) == len(live)
    assert "llm_api_key" not in json.dumps(data.manifest)
    assert (tmp_path / "index.llm-names.json").is_file()  # the cache sits beside the index, not inside it
