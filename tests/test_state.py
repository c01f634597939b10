"""The served index's state: rebuild requests and what a job says when its last step fails."""

import threading

import pytest

import service.state as state
from indexer.errors import JobConflict
from service.settings import Settings
from tests.conftest import DEMO_CORPUS, DEMO_EMBEDDINGS, ROOT


def make_state(tmp_path):
    settings = Settings(index_dir=tmp_path / "idx", data_dir=ROOT / "data", corpus=DEMO_CORPUS, embeddings=DEMO_EMBEDDINGS)
    return state.AppState(settings, embedder=None)


def test_an_index_written_but_not_loaded_is_said_so(tmp_path, monkeypatch):
    app = make_state(tmp_path)
    monkeypatch.setattr(state, "build_index", lambda cfg, embedder, on_stage: "the new index")

    def swap(data):  # e.g. no memory for a second index beside the one served
        raise MemoryError("out of memory")

    monkeypatch.setattr(app, "swap", swap)
    job = app.start_rebuild()
    app.jobs.join(10)
    done = app.jobs.get(job)
    assert done.state == "failed"
    assert done.error.startswith(f"the new index was written to {tmp_path / 'idx'} but could not be loaded to serve "
                                 "(MemoryError: out of memory); the old one is served until the server restarts")


def test_an_index_that_loads_but_cannot_be_served_leaves_the_service_up_and_says_why(tmp_path, monkeypatch):
    from indexer.errors import IndexNotReady

    app = make_state(tmp_path)
    monkeypatch.setattr(state, "load_index", lambda path, verify: "damaged")  # read without checksums, say

    def searcher(data, threads):
        raise ValueError("shapes (4,) and (3,) not aligned")

    monkeypatch.setattr(state, "Searcher", searcher)
    app.load()  # no exception reaches the lifespan, where uvicorn would print it and exit
    with pytest.raises(IndexNotReady, match=r"could not be loaded \(ValueError: shapes"):
        app.searcher


def test_a_second_rebuild_is_refused_as_busy_before_its_files_are_read(tmp_path, monkeypatch):
    app, release = make_state(tmp_path), threading.Event()
    app.jobs.submit(lambda on_stage: release.wait(10))
    monkeypatch.setattr(app, "rebuild_config", lambda *a: pytest.fail("read the files while a rebuild runs"))
    with pytest.raises(JobConflict):
        app.start_rebuild("no-such.parquet")
    release.set()
    app.jobs.join(10)


def test_a_named_corpus_keeps_the_configured_embeddings_only_when_it_is_the_configured_file(tmp_path):
    import shutil

    for name in ("corpus.parquet", "other.parquet"):
        shutil.copy(DEMO_CORPUS, tmp_path / name)
    shutil.copy(DEMO_EMBEDDINGS, tmp_path / "rows.npy")
    settings = Settings(index_dir=tmp_path / "idx", data_dir=tmp_path, corpus=tmp_path / "corpus.parquet",
                        embeddings=tmp_path / "rows.npy")
    app = state.AppState(settings, embedder=None)
    assert app.rebuild_config(None, None).embeddings == tmp_path / "rows.npy"
    # The configured file named by the request: its rows are the configured ones, not minutes of embedding.
    assert app.rebuild_config("corpus.parquet", None).embeddings == tmp_path / "rows.npy"
    assert app.rebuild_config("other.parquet", None).embeddings is None
    assert app.rebuild_config("other.parquet", "rows.npy").embeddings == (tmp_path / "rows.npy").resolve()


@pytest.mark.parametrize("recorded", [
    {"k": None}, {"k": "32"}, {"k": 32.5}, {"k": True}, {"latents": [1]}, {"k": 0}, {"faiss_factory": 123},
])
def test_a_rebuild_ignores_build_options_the_old_manifest_records_wrongly(tmp_path, monkeypatch, recorded):
    app = make_state(tmp_path)
    monkeypatch.setattr(state, "previous_options", lambda out, names: dict(recorded))
    cfg = app.rebuild_config(None, None)  # was a TypeError, so a 500
    assert (cfg.k, cfg.latents, cfg.faiss_factory) == (32, None, "SQfp16")
