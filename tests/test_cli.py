"""The command line: expected failures print one line and exit non-zero, never a traceback."""

import socket
import subprocess
import sys

import pytest

from service.cli import _check_address, main
from tests.conftest import DEMO_CORPUS, ROOT


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["build", "--corpus", "missing.parquet", "--out", "{tmp}/i"], "missing.parquet"),
        (["build", "--corpus", "{tmp}/corpus.xml", "--out", "{tmp}/i"], "format"),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--k", "0"], "k must"),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--embeddings", "{tmp}/none.npy"], "none.npy"),
        (["rebuild", "--url", "http://127.0.0.1:9", "--key", "k"], "cannot reach"),
        (["rebuild", "--url", "notaurl", "--key", "k"], "unknown url type"),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}/i", "--seed", "-1"], "seed must"),
        (["build", "--corpus", str(DEMO_CORPUS), "--out", "{tmp}", "--limit", "20"], "not an index"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, fragment):
    (tmp_path / "corpus.xml").write_text("<xml/>")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("sae-search: error:") and fragment in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "i").exists()


def test_a_port_out_of_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "70000"])
    assert info.value.code == 2 and "from 1 to 65535" in capsys.readouterr().err


def test_an_unknown_log_level_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv("SAE_SEARCH_LOG_LEVEL", "LOUD")
    with pytest.raises(SystemExit) as info:
        main(["rebuild", "--key", "k"])
    assert info.value.code == 2 and "must be one of DEBUG" in capsys.readouterr().err


def test_serve_refuses_a_bad_setting_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SAE_SEARCH_QUERY_CACHE", "-1")
    assert main(["serve", "--index", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sae-search: error: invalid setting: SAE_SEARCH_QUERY_CACHE")


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
