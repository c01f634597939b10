import logging
"""The command line: expected failures print one line and exit non-zero, never a traceback."""

import socket
import subprocess
import sys
import threading

import pytest

from service.cli import _check_address, main
from tests.conftest import DEMO_CORPUS, ROOT


@pytest.mark.parametrize(
    "args, fragment, code",
    [
        (["build", "--corpus", "missing.parquet", "--out", "{tmp}/i"], "missing.parquet", 1),
        (["build", "--corpus", "{tmp}/corpus.xml", "--out", "{tmp}/i"], "format", 1),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--k", "0"], "k must", 2),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--k", "-5"], "k must be >= 1, got -5", 2),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--embeddings", "{tmp}/none.npy"], "none.npy", 1),
        (["rebuild", "--url", "http://127.0.0.1:9", "--key", "k"], "cannot reach", 1),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--seed", "-1"], "seed must", 2),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}", "--limit", "20"], "not an index", 1),
        (["train-sae", "--embeddings", "{tmp}/none.npy", "--out", "{tmp}/s", "--k", "-5"], "k < latents", 2),
        (["train-sae", "--embeddings", "{tmp}/none.npy", "--out", "{tmp}/s", "--time-budget", "0"], "time-budget", 2),
        (["train-sae", "--embeddings", "{tmp}/none.npy", "--out", "{tmp}/s"], "none.npy", 1),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, fragment, code):
    """A value the command refuses before any work exits 2, as argparse's own usage errors; a failure in the
    work (a missing file, an unreachable server) exits 1."""
    (tmp_path / "corpus.xml").write_text("<xml/>")
    got = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code
    assert err[-1].startswith("sae-search: error:") and fragment in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "i").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["serve", "--port", "70000"], "from 1 to 65535"), (["build", "--corpus", "c", "--out", "o", "--k", "x"], "invalid int"),
        (["rebuild", "--url", "notaurl"], "http://HOST:PORT"), (["rebuild", "--url", "ftp://127.0.0.1:8000"], "http://HOST:PORT"),
        (["rebuild", "--url", "http://127.0.0.1:abc"], "http://HOST:PORT"), (["rebuild", "--url", "http://exa mple.com"], "HOST:PORT"),
        (["rebuild", "--url", "http://:8000"], "http://HOST:PORT"), (["rebuild", "--url", "http://h:99999"], "HOST:PORT"),
        (["rebuild", "--url", "http://u:pw@h:8000"], "HOST:PORT"), (["rebuild", "--url", "http://h:8000/?x=1"], "HOST:PORT"),
        (["rebuild", "--url", "http://[::1"], "HOST:PORT"), (["rebuild", "--url", "http://[::1]x"], "HOST:PORT"),
        # An empty value (a script's unset variable) would otherwise rebuild from the server's configured file.
        (["rebuild", "--corpus", ""], "must not be blank"), (["rebuild", "--embeddings", " "], "must not be blank"),
    ],
)
def test_a_malformed_argument_is_a_one_line_usage_error(capsys, args, fragment):
    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("sae-search ") and fragment in err[0]


def test_an_unknown_log_level_is_a_usage_error_as_a_flag_and_a_settings_error_as_a_variable(capsys, monkeypatch):
    with pytest.raises(SystemExit) as info:
        main(["--log-level", "LOUD", "rebuild", "--key", "k"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "--log-level must be one of DEBUG" in err[0]
    monkeypatch.setenv("SAE_SEARCH_LOG_LEVEL", "LOUD")  # exit 1, as for every other bad setting
    assert main(["rebuild", "--key", "k"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sae-search: error: invalid setting: SAE_SEARCH_LOG_LEVEL must be one of DEBUG, INFO, WARNING, "
                   "ERROR, CRITICAL, got 'LOUD'"]


@pytest.mark.parametrize(
    "name, value",
    [
        ("QUERY_CACHE", "-1"), ("SEARCH_THREADS", "30000"), ("DEVICE", "tpu"), ("DEVICE", "cuda:1"),
        ("MODEL", "{tmp}/no-model"), ("LLM_BASE_URL", "notaurl"), ("LLM_BASE_URL", "http://127.0.0.1:9/v1"),
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line(tmp_path, capsys, monkeypatch, name, value):
    # DEVICE and MODEL were found only in the app's lifespan, which uvicorn reports as a traceback.
    monkeypatch.setenv(f"SAE_SEARCH_{name}", value.format(tmp=tmp_path))
    assert main(["serve", "--index", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sae-search: error: invalid setting: SAE_SEARCH_{name}")


@pytest.mark.parametrize("url", ["http://", "http:// x", "ftp://host/v1"])
def test_build_and_serve_refuse_an_llm_endpoint_without_a_host_as_a_setting(tmp_path, capsys, monkeypatch, url):
    # It once passed these checks and failed the build at its naming stage, after the embeddings and the SAE.
    monkeypatch.setenv("SAE_SEARCH_LLM_BASE_URL", url)
    monkeypatch.setenv("SAE_SEARCH_LLM_MODEL", "m")
    for argv in (["build", "--corpus", str(DEMO_CORPUS), "--out", str(tmp_path / "i")], ["serve", "--index", "i"]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"sae-search: error: invalid setting: SAE_SEARCH_LLM_BASE_URL: the LLM endpoint must be an "
                       f"http:// or https:// address with a host, got {url!r}"]
    assert not (tmp_path / "i").exists()


def test_serve_refuses_a_model_that_fails_to_load_in_one_line(tmp_path, capsys, monkeypatch):
    import service.cli as cli

    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")  # passes the directory check, fails the load
    monkeypatch.setattr(cli, "_check_address", lambda host, port: None)
    monkeypatch.setenv("SAE_SEARCH_MODEL", str(broken))
    assert main(["serve", "--index", str(tmp_path / "i")]) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("ts=")]  # no logs
    assert len(err) == 1 and err[0].startswith(f"sae-search: error: invalid setting: SAE_SEARCH_MODEL: cannot load "
                                               f"model from {broken}")


def test_serve_warns_of_missing_files_that_only_a_rebuild_reads(tmp_path, monkeypatch, caplog):
    import uvicorn

    import service.cli as cli

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw))
    monkeypatch.setattr(cli, "_check_address", lambda host, port: None)
    monkeypatch.setenv("SAE_SEARCH_CORPUS", str(tmp_path / "gone.parquet"))
    monkeypatch.setenv("SAE_SEARCH_EMBEDDINGS", str(tmp_path / "gone.npy"))
    with caplog.at_level("WARNING", logger="service.cli"):
        assert main(["serve", "--index", str(tmp_path / "i")]) == 0
    warned = [r.getMessage().split(" ")[0] for r in caplog.records if r.levelname == "WARNING"]
    assert served and warned == ["SAE_SEARCH_CORPUS", "SAE_SEARCH_EMBEDDINGS"]


def test_serve_keeps_the_log_level_it_was_given(tmp_path, monkeypatch):
    import uvicorn

    import service.cli as cli

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw))
    monkeypatch.setattr(cli, "_check_address", lambda host, port: None)
    monkeypatch.delenv("SAE_SEARCH_LOG_LEVEL", raising=False)
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # restored after the test
    assert main(["--log-level", "debug", "serve", "--index", str(tmp_path / "i")]) == 0
    assert root.level == logging.DEBUG and served[0]["log_level"] == "debug"


def test_rebuild_without_waiting_prints_the_job_id(monkeypatch, capsys):
    import service.cli as cli

    # The server's side is tested in test_api; here only what the command does with its answer.
    monkeypatch.setattr(cli, "_request", lambda url, key, method="GET", body=None, needs=(): {"job_id": "abc123"})
    assert main(["--log-level", "WARNING", "rebuild", "--key", "k", "--no-wait"]) == 0
    assert capsys.readouterr().out == "abc123\n"


@pytest.mark.parametrize("behaviour", ["hangs", "hangs up"])
def test_a_server_that_accepts_but_does_not_answer_counts_as_unreachable(monkeypatch, behaviour):
    import service.cli as cli

    monkeypatch.setattr(cli, "REQUEST_TIMEOUT", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/jobs/x"
        if behaviour == "hangs up":  # accepts, then closes without a word (a server going down mid-request)
            threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True).start()
        with pytest.raises(cli._Unreachable, match=f"no answer from {url}"):
            cli._request(url, "k")


def test_a_waiting_rebuild_rides_out_a_server_that_stops_answering_for_a_while(monkeypatch, capsys):
    import service.cli as cli

    answers = iter([{"job_id": "abc123"}, None, None, {"state": "running"}, None, {"state": "succeeded"}])

    def server(url, key, method="GET", body=None, needs=()):
        answer = next(answers)
        if answer is None:  # a restarting server refuses the connection
            raise cli._Unreachable(f"cannot reach {url}: [Errno 111] Connection refused")
        return answer

    monkeypatch.setattr(cli, "_request", server)
    monkeypatch.setattr(cli.time, "sleep", lambda s: None)
    assert main(["rebuild", "--key", "k"]) == 0
    monkeypatch.setattr(cli, "WAIT_RETRIES", 1)
    answers = iter([{"job_id": "abc123"}, None, None])
    assert main(["rebuild", "--key", "k"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("Connection refused")
    answers = iter([{"job_id": "abc123"}, {"state": "running"}, {"state": "pending"}])  # no sae-search state: not forever
    assert main(["rebuild", "--key", "k"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("answered state 'pending'; is --url an sae-search server?")


@pytest.mark.parametrize("answer", [b'{"ok": true}', b'[1, 2]', b'"job"', b'{"job_id": 12}', b'{"job_id": "../x?y"}'])
def test_rebuild_against_a_server_that_is_not_sae_search_is_a_one_line_error(capsys, answer):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Other(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    with HTTPServer(("127.0.0.1", 0), Other) as other:
        threading.Thread(target=other.handle_request, daemon=True).start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        assert main(["rebuild", "--url", url, "--key", "k", "--no-wait"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "; is --url an sae-search server?" in err[0] and "job_id" in err[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "no-such-host.invalid", "a..b"])
def test_serve_refuses_an_address_it_cannot_listen_on_before_loading(tmp_path, capsys, host):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The index does not exist: the address is checked first, so that is not what fails.
        assert main(["serve", "--index", str(tmp_path / "i"), "--host", host, "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sae-search: error: cannot listen on {host}:{port}: ")


def test_serve_accepts_an_address_uvicorn_would_listen_on():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for host in ("", "localhost", "127.0.0.1"):  # "" is every interface, as for uvicorn
        _check_address(host, port)


def test_console_entry_point_exits_non_zero_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "service", "build", "--corpus", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "i")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("sae-search: error:")


def test_ctrl_c_while_the_cli_starts_exits_130(monkeypatch):
    # torch and FAISS load inside main (in parser()), so a Ctrl-C during those seconds reaches main's handler.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, service.cli; print(sorted({'torch', 'faiss'} & set(sys.modules)))"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert loaded.stdout.strip() == "[]"

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("service.cli.parser", interrupted)
    assert main(["build", "--corpus", "c.jsonl", "--out", "i"]) == 130


def _no_training(*args, **kwargs):
    raise AssertionError("the build trained an SAE before refusing its options")


@pytest.mark.parametrize(
    "args, message, exit_code",
    [
        (["--time-budget", "inf"], "time budget must be > 0 seconds and finite, got inf", 2),
        (["--time-budget", "nan"], "time budget must be > 0 seconds and finite, got nan", 2),
        (["--faiss", ""], "the FAISS index type is empty: give an index_factory string such as SQfp16, Flat or HNSW32", 2),
        # Checked once the embeddings give the dimension: after some work, so a failure of the build (exit 1).
        (["--faiss", "nonsense"], "unknown FAISS index type 'nonsense': could not parse index string nonsense", 1),
        (["--embeddings", "{tmp}/text.npy"], "cannot read embeddings file {tmp}/text.npy: it is not a .npy file", 1),
        # 64 clusters cannot be trained on 20 rows: the dense index is built before the SAE, so that is found first.
        (["--faiss", "IVF64,Flat"], "FAISS index type 'IVF64,Flat' cannot index these 20 rows: ", 1),
        # The build writes beside OUT under a name 22 bytes longer, which the file system would refuse at the end.
        (["--out", "{tmp}/" + "b" * 250], "the index directory's name is 250 bytes; give one of at most 233", 1),
        (["--embeddings", "{tmp}/" + "e" * 256], "{tmp}/" + "e" * 256 + ": File name too long", 1),
    ],
)
def test_build_refuses_bad_options_in_one_plain_line_before_training(tmp_path, capsys, monkeypatch, args, message, exit_code):
    (tmp_path / "text.npy").write_text("0.1 0.2\n0.3 0.4\n")
    monkeypatch.setattr("indexer.pipeline.train_sae", _no_training)
    argv = ["build", "--corpus", str(DEMO_CORPUS), "--out", str(tmp_path / "i"), "--limit", "20"]
    code = main(argv + [a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == exit_code and err[-1].startswith(f"sae-search: error: {message.format(tmp=tmp_path)}")
    assert not any(word in err[-1] for word in (".cpp", "faiss::", "allow_pickle", "pickled", "OSError", "Errno"))
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "i").exists()


def test_a_bad_embeddings_file_is_refused_before_the_corpus_and_the_model_load(tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the build read the corpus before refusing its embeddings file")

    monkeypatch.setattr("indexer.pipeline.load_corpus", no_loading)
    monkeypatch.setattr("indexer.pipeline.Embedder", no_loading)
    code = main(["build", "--corpus", str(DEMO_CORPUS), "--out", str(tmp_path / "i"), "--embeddings", str(tmp_path / "none.npy")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1] == f"sae-search: error: embeddings file not found: {tmp_path}/none.npy does not exist or is not a file"
