"""Optional LLM namer (indexer/llm_names.py) against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexer.codes import FeatureStats, InvertedLists, SparseCodes, feature_stats, invert
from indexer.errors import InvalidArgument
from indexer.llm_names import LlmConfig, clean_reply, llm_name_features, short_title
from indexer.names import FeatureNames, NamingConfig, name_features

TOPICS = ["quasar jets", "protein folding", "graph kernels"]
N_DOCS = 300


class FakeChat:
    """An OpenAI-compatible /v1/chat/completions endpoint that names a feature after the planted topic its
    examples share; `mode` switches it to failing ("500") or malformed ("junk") replies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if fake.mode == "500":
                    self.send_error(500, "boom")
                    return
                prompt = body["messages"][-1]["content"].split("does not fire")[0]
                topic = max(TOPICS, key=prompt.count)
                content = f'Name: "{topic.title()} studies"' if fake.mode == "ok" else None
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                if fake.mode == "junk":
                    reply = {"unexpected": True}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def fake_chat() -> Iterator[FakeChat]:
    fake = FakeChat()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], InvertedLists, FeatureStats, FeatureNames]:
    """Feature f < 3 fires exactly on documents about TOPICS[f]; feature 3 never fires."""
    rng = np.random.default_rng(0)
    filler = [f"w{a}{b}x" for a in "bcdfg" for b in "klmnp"]
    topic = rng.integers(0, 3, N_DOCS)
    texts = [
        f"On {TOPICS[t]} and {' '.join(rng.choice(filler, 8))}. We study {TOPICS[t]} with {' '.join(rng.choice(filler, 20))}."
        for t in topic
    ]
    idx = np.stack([topic, np.full(N_DOCS, 3)], axis=1).astype(np.int32)
    val = np.stack([rng.uniform(0.2, 1.0, N_DOCS), np.zeros(N_DOCS)], axis=1).astype(np.float32)
    codes = SparseCodes(indices=idx, values=val, n_features=4)
    inv = invert(codes)
    stats = feature_stats(inv, N_DOCS)
    cfg = NamingConfig(top_docs=20, trust_negatives=100, dense_threshold=0.5)
    return texts, inv, stats, name_features(texts, inv, stats, cfg)


def config(url: str, tmp_path: Path, **kw: Any) -> LlmConfig:
    return LlmConfig(base_url=url, model="fake-model", api_key="sk-test", cache_path=tmp_path / "llm.json", **kw)


NAMING = NamingConfig(top_docs=20, trust_negatives=100, dense_threshold=0.5)


def test_names_come_from_the_server_and_the_cache_avoids_a_second_call(fake_chat, corpus, tmp_path) -> None:
    texts, inv, _, base = corpus
    out = llm_name_features(texts, inv, base, config(fake_chat.url, tmp_path), NAMING)
    assert out.names[:3] == [f"{t.title()} studies" for t in TOPICS]
    assert out.names[3] == base.names[3] == "dead feature 3"
    assert len(fake_chat.requests) == 3
    first = fake_chat.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
    assert first["body"]["model"] == "fake-model"
    assert "does not fire" in first["body"]["messages"][-1]["content"]
    # The names say what the features are, so their recomputed trust is high.
    assert (out.trust[:3] >= 0.9).all(), out.trust
    assert out.descriptions == base.descriptions and out.status == base.status
    assert base.names[0] != out.names[0], "the input must not be modified"

    again = llm_name_features(texts, inv, base, config(fake_chat.url, tmp_path), NAMING)
    assert again.names == out.names
    assert len(fake_chat.requests) == 3, "cached names must not be asked again"
    cached = json.loads((tmp_path / "llm.json").read_text())
    assert sorted(cached["names"].values()) == sorted(out.names[:3])


def test_server_errors_fall_back_to_tfidf_names(fake_chat, corpus, tmp_path, caplog) -> None:
    texts, inv, _, base = corpus
    fake_chat.mode = "500"
    with caplog.at_level(logging.WARNING, logger="indexer.llm_names"):
        out = llm_name_features(texts, inv, base, config(fake_chat.url, tmp_path, max_failures=2), NAMING)
    assert out.names == base.names
    np.testing.assert_array_equal(out.trust, base.trust)
    assert len(fake_chat.requests) == 2, "stop asking after max_failures failures in a row"
    assert any("HTTP 500" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "llm.json").exists()


def test_malformed_replies_fall_back(fake_chat, corpus, tmp_path, caplog) -> None:
    texts, inv, _, base = corpus
    fake_chat.mode = "junk"
    with caplog.at_level(logging.WARNING, logger="indexer.llm_names"):
        out = llm_name_features(texts, inv, base, config(fake_chat.url, tmp_path), NAMING, features=[1])
    assert out.names == base.names
    assert len(fake_chat.requests) == 1
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_unreachable_endpoint_falls_back_and_stops_asking(corpus, tmp_path, caplog) -> None:
    texts, inv, _, base = corpus
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    cfg = config("http://127.0.0.1:9/v1", tmp_path, timeout_s=2, max_failures=2)
    with caplog.at_level("WARNING", logger="indexer.llm_names"):
        out = llm_name_features(texts, inv, base, cfg, NAMING)
    assert out.names == base.names and sum(n != "dead" for n in base.status) > 2  # features left unasked
    warned = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("LLM naming failed for feature") for m in warned) == 2  # then no more requests
    assert "2 LLM failures in a row: keeping TF-IDF names for the rest" in warned


def test_names_the_corpus_never_uses_get_chance_trust(fake_chat, corpus, tmp_path) -> None:
    texts, inv, _, base = corpus
    cfg = config(fake_chat.url, tmp_path)
    out = llm_name_features(texts, inv, base, cfg, NAMING, features=[0])
    # Rewrite the cached answer into words that never occur in the abstracts.
    path = tmp_path / "llm.json"
    data = json.loads(path.read_text())
    data["names"] = {k: "Medieval tapestry weaving" for k in data["names"]}
    path.write_text(json.dumps(data))
    odd = llm_name_features(texts, inv, base, cfg, NAMING, features=[0])
    assert odd.names[0] == "Medieval tapestry weaving" and out.names[0] != odd.names[0]
    assert odd.trust[0] == pytest.approx(0.5)


def test_clean_reply_and_titles() -> None:
    assert clean_reply('Name: "Dark matter halos."') == "Dark matter halos"
    assert clean_reply("<think>hmm, galaxies?</think>\n\n**Galaxy cluster lensing**") == "Galaxy cluster lensing"
    assert clean_reply("one two three four five six seven") == "one two three four five"
    assert clean_reply("  \n 123 \n") is None
    assert short_title("A title. The abstract.", 50) == "A title"
    assert short_title("word " * 40, 20).endswith("...") and len(short_title("word " * 40, 20)) <= 23


def test_config_validation(tmp_path) -> None:
    with pytest.raises(InvalidArgument):
        LlmConfig(base_url="ftp://x", model="m")
    with pytest.raises(InvalidArgument):
        LlmConfig(base_url="http://x/v1", model=" ")
    with pytest.raises(InvalidArgument):
        LlmConfig(base_url="http://x/v1", model="m", timeout_s=0)
    assert LlmConfig(base_url="http://x/v1", model="m", cache_path=str(tmp_path / "c.json")).cache_path == tmp_path / "c.json"
