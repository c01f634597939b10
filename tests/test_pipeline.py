"""The build pipeline on real abstracts: manifest contents, staleness, and refusal of bad embeddings."""

import json

import numpy as np
import pytest

from indexer.artifacts import load_index
from indexer.errors import EmbeddingMismatch, InvalidArgument
from indexer.pipeline import BUILD_STAGES, build_index, is_current
from tests.conftest import make_build_cfg

pytestmark = pytest.mark.slow


def test_manifest_records_provenance(demo_index):
    m = json.loads((demo_index / "manifest.json").read_text())
    assert m["documents"] == 300 and m["model"]["dim"] == 384
    assert m["corpus"]["sha256"] and m["corpus"]["rows_used"] == 300
    assert m["sae"]["k"] == 16 and m["sae"]["n"] == 256 and "train_nmse" in m["sae"]["metrics"]
    assert m["faiss"]["type"] == "SQfp16" and m["embeddings"]["min_cosine"] >= 0.99
    assert list(m["timings_s"]) == [s for s in BUILD_STAGES if s != "write"]  # the stages a rebuild job reports
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


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest-list"])
def test_a_damaged_index_is_never_current(demo_index, tmp_path, damage):
    import shutil

    out = tmp_path / "idx"
    shutil.copytree(demo_index, out)
    cfg = make_build_cfg(tmp_path, out=out)
    assert is_current(cfg)
    if damage == "truncate":
        (out / "dense.faiss").write_bytes(b"")
    elif damage == "delete":
        (out / "sae" / "sae.safetensors").unlink()
    else:
        (out / "manifest.json").write_text("[1]")
    assert not is_current(cfg)


def test_misaligned_embeddings_are_refused(tmp_path, embedder):
    emb = np.load(make_build_cfg(tmp_path).embeddings)
    shuffled = tmp_path / "shuffled.npy"
    np.save(shuffled, np.roll(emb, 1, axis=0))  # every row of the file, one place off
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


@pytest.mark.parametrize(
    "factory, message",
    [
        ("nonsense", "unknown FAISS index type 'nonsense': could not parse index string nonsense"),
        ("PQ7", "FAISS index type 'PQ7' cannot index 384-dimensional embeddings: The dimension of the vector"),
    ],
)
def test_a_faiss_type_faiss_cannot_make_is_refused_before_the_sae_trains(tmp_path, embedder, factory, message):
    stages: list[str] = []
    with pytest.raises(InvalidArgument) as info:
        build_index(make_build_cfg(tmp_path, faiss_factory=factory), embedder=embedder, on_stage=stages.append)
    assert str(info.value).startswith(message) and ".cpp" not in str(info.value)
    assert stages == ["inputs", "corpus", "embeddings"]


class _Trained(Exception):
    """Raised in place of SAE training: the build got past its embeddings checks."""


def _no_training(*args, **kwargs):
    raise _Trained


def test_embeddings_with_more_rows_than_the_corpus_file_are_refused(tmp_path, embedder, monkeypatch):
    from indexer.tables import read_parquet, write_parquet
    from tests.conftest import DEMO_CORPUS, DEMO_EMBEDDINGS

    corpus = tmp_path / "c300.parquet"
    write_parquet(read_parquet(DEMO_CORPUS).slice(0, 300), corpus)
    extra = tmp_path / "e301.npy"
    np.save(extra, np.load(DEMO_EMBEDDINGS)[:301])
    monkeypatch.setattr("indexer.pipeline.train_sae", _no_training)
    # Without --limit, or with one the file ends before, every row of the file was read: 300 is its count. With
    # a --limit that stops reading early, a Parquet file's footer still gives it.
    for limit in (None, 301, 100):
        with pytest.raises(InvalidArgument) as info:
            build_index(make_build_cfg(tmp_path, corpus=corpus, embeddings=extra, limit=limit), embedder=embedder)
        assert str(info.value) == (
            f"{extra} has 301 rows but the corpus file has 300; embeddings must be aligned with the corpus file's rows"
        )
    # A text corpus read only in part leaves the file's count unknown: nothing to refuse.
    lines = tmp_path / "c300.jsonl"
    lines.write_text("".join(json.dumps(r, default=str) + "\n" for r in read_parquet(corpus).to_pylist()))
    with pytest.raises(_Trained):
        build_index(make_build_cfg(tmp_path, corpus=lines, embeddings=extra, limit=100), embedder=embedder)
    aligned = tmp_path / "e300.npy"
    np.save(aligned, np.load(DEMO_EMBEDDINGS)[:300])
    with pytest.raises(_Trained):
        build_index(make_build_cfg(tmp_path, corpus=corpus, embeddings=aligned, limit=None), embedder=embedder)
    assert not (tmp_path / "index").exists()


def test_a_diverged_sae_fails_the_build_and_writes_nothing(tmp_path, embedder, monkeypatch):
    from functools import partial

    from indexer.errors import TrainingDiverged
    from indexer.train import TrainConfig

    monkeypatch.setattr("indexer.pipeline.TrainConfig", partial(TrainConfig, lr=1e9, threads=1))
    pattern = r"^SAE training diverged .* at learning rate 1e\+09; no index was written$"
    with pytest.raises(TrainingDiverged, match=pattern):
        build_index(make_build_cfg(tmp_path, epochs=3), embedder=embedder)
    assert not (tmp_path / "index").exists()
