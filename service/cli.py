"""The `sae-search` command: build, train-sae, serve, rebuild. Expected failures print one line and exit 1; a
refused command line or option value exits 2."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NoReturn

from indexer.errors import InvalidArgument, SaeSearchError, UsageError, os_error_text
from service.logs import LEVELS, configure_logging

log = logging.getLogger("sae-search")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from indexer.config import check_llm
    from indexer.embed import resolve_device, resolve_model
    from service.app import create_app, load_embedder
    from service.settings import Settings

    # The flag reaches the settings: create_app sets the level from them, which would undo main's.
    overrides = {"log_level": args.log_level, **({"index_dir": args.index} if args.index else {})}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        bad = "; ".join(f"SAE_SEARCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise InvalidArgument(f"invalid setting: {bad}") from None
    # Checked here, not in the app's lifespan, where uvicorn would print the error as a traceback.
    checks = (
        ("DEVICE", lambda: resolve_device(settings.device)),
        ("MODEL", lambda: resolve_model(settings.model)),
        ("LLM_BASE_URL", lambda: check_llm(settings.llm_base_url, settings.llm_model)),
    )
    for name, check in checks:
        try:
            check()
        except InvalidArgument as exc:
            raise InvalidArgument(f"invalid setting: SAE_SEARCH_{name}: {exc}") from None
    if not settings.corpus.is_file():
        log.warning("SAE_SEARCH_CORPUS %s is not a file: a rebuild must name its corpus", settings.corpus)
    if settings.embeddings is not None and not settings.embeddings.is_file():
        log.warning("SAE_SEARCH_EMBEDDINGS %s is not a file: a rebuild of the configured corpus will be refused "
                    "(set it blank for the model to embed the corpus)", settings.embeddings)
    if not settings.data_dir.is_dir():
        log.warning("SAE_SEARCH_DATA_DIR %s is not a directory: a rebuild naming a corpus file will be refused", settings.data_dir)
    _check_address(args.host, args.port)
    try:  # loaded here, not in the lifespan: a model that fails to load is then one line, not uvicorn's traceback
        embedder = load_embedder(settings)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid setting: SAE_SEARCH_MODEL: {exc}") from None
    app = create_app(settings, embedder)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), access_log=False)
    return 0


def _check_address(host: str, port: int) -> None:
    """Refuse an address that cannot be listened on before the index loads (uvicorn finds out only after). Binds
    as asyncio's create_server does for uvicorn: every passive address of the host ("" is every interface),
    IPv6 sockets IPv6-only, families the machine lacks skipped, and an address it cannot assign skipped too."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # a malformed name such as "a..b" is a UnicodeError
        raise InvalidArgument(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    bound = 0
    for family, kind, proto, _, addr in dict.fromkeys(infos):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:
            continue
        with sock:
            if os.name == "posix":  # as asyncio: elsewhere SO_REUSEADDR lets a busy port bind
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
                bound += 1
            except OSError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:
                    raise InvalidArgument(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if not bound:
        raise InvalidArgument(f"cannot listen on {host}:{port}: no address of it can be used on this machine")


WAIT_RETRIES = 30
"""Failed tries in a row, a second apart, after which `rebuild` gives up on a server that stopped answering (one
restarting). A try that hangs waits up to REQUEST_TIMEOUT first."""
JOB_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
"""What a job id looks like (sae-search's are 12 hex digits): it goes into the polling URL as it is."""
REQUEST_TIMEOUT = 30.0
"""Seconds one request waits for the server's answer."""


class _Unreachable(SaeSearchError):
    """The server did not answer at all (refused, reset, timed out)."""


def _request(url: str, key: str, method: str = "GET", body: dict | None = None, needs: tuple[str, ...] = ()) -> dict:
    """The JSON object `url` answers, holding the keys `needs`; SaeSearchError for any other answer."""
    data = json.dumps(body).encode() if body is not None else None
    try:
        req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
            answer = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}")
            detail = error.get("detail", exc.reason) if isinstance(error, dict) else exc.reason
        except ValueError:
            detail = exc.reason
        raise SaeSearchError(f"{method} {url} answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise _Unreachable(f"cannot reach {url}: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:  # while reading the answer: no URLError wraps these
        raise _Unreachable(f"no answer from {url}: {exc or type(exc).__name__}") from None
    except ValueError as exc:  # a malformed URL, or an answer that is not JSON (not an sae-search server)
        raise SaeSearchError(f"{method} {url}: {exc}; is --url an sae-search server?") from None
    if not isinstance(answer, dict) or any(k not in answer for k in needs):
        raise SaeSearchError(f"{method} {url} answered without {', '.join(needs) or 'a JSON object'}; is --url an "
                             "sae-search server?")
    return answer


def _rebuild(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("SAE_SEARCH_ADMIN_KEY", "")
    if not key:
        raise SaeSearchError("no admin key: pass --key or set SAE_SEARCH_ADMIN_KEY")
    base = args.url.rstrip("/")
    body = {k: v for k, v in (("corpus", args.corpus), ("embeddings", args.embeddings)) if v is not None}
    job = _request(f"{base}/index/rebuild", key, "POST", body, needs=("job_id",))["job_id"]
    if not (isinstance(job, str) and JOB_ID.fullmatch(job)):
        raise SaeSearchError(f"POST {base}/index/rebuild answered job_id {job!r}; is --url an sae-search server?")
    log.info("rebuild started job_id=%s", job)
    if args.no_wait:
        sys.stdout.write(f"{job}\n")  # the one result, for a script to poll GET /jobs/{id} with, whatever the log level
        return 0
    misses = 0
    while True:
        try:
            state = _request(f"{base}/jobs/{job}", key, needs=("state",))
            misses = 0
        except _Unreachable:
            misses += 1
            if misses > WAIT_RETRIES:
                raise
            if misses == 1 or misses % 10 == 0:  # one line a second would bury the rest of the log
                log.warning("server not answering, asking again job_id=%s tries=%d of %d", job, misses, WAIT_RETRIES)
            state = {"state": "unknown"}
        if state["state"] in ("succeeded", "failed"):
            break
        if state["state"] not in ("queued", "running", "unknown"):  # a server that is not sae-search: never done
            raise SaeSearchError(f"GET {base}/jobs/{job} answered state {state['state']!r}; is --url an sae-search "
                                 "server?")
        time.sleep(1.0)
    if state["state"] == "failed":
        raise SaeSearchError(f"rebuild {job} failed: {state.get('error') or 'the server gave no reason'}")
    log.info("rebuild succeeded job_id=%s", job)
    return 0


def port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 1 to 65535, got {text}")
    return port


def file_name(text: str) -> str:
    # An empty value (`--corpus "$UNSET"`) must not quietly mean the server's configured file.
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank; leave the option out for the server's configured file")
    return text


def http_url(text: str) -> str:
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # an unclosed IPv6 bracket: "http://[::1"
        raise argparse.ArgumentTypeError(f"give the server as http://HOST:PORT, got {text!r}") from None
    try:
        port_ok = parts.port is None or 0 < parts.port  # reading it raises for a port that is not a number
    except ValueError:
        port_ok = False
    host = parts.hostname or ""
    # The address must be the host and port alone: "[::1]x" parses with host ::1 and no port.
    address = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if port_ok and parts.port else "")
    plain = text.isascii() and not any(c.isspace() for c in text) and parts.netloc.lower() == address
    if parts.scheme not in ("http", "https") or not host or not port_ok or not plain or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"give the server as http://HOST:PORT, got {text!r}")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line like every other error (its own prints the usage first); the
    exit code stays argparse's 2, a malformed command line. Subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def parser() -> argparse.ArgumentParser:
    # Imported here, inside main's handling of Ctrl-C: they load FAISS. torch loads only in the handlers that need it
    # (build, train-sae, serve), so `--help` and `rebuild` start in a fraction of a second instead of 3 to 4.
    from indexer.build_cli import add_build_parser
    from indexer.train_cli import add_train_parser

    p = _Parser(prog="sae-search", description=__doc__)
    p.add_argument("--log-level",
                   help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: SAE_SEARCH_LOG_LEVEL, else INFO)")
    sub = p.add_subparsers(dest="command", required=True)
    add_build_parser(sub)
    add_train_parser(sub)
    s = sub.add_parser("serve", help="serve an index over HTTP")
    s.add_argument("--index", help="index directory (default: SAE_SEARCH_INDEX_DIR or data/index)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=port, default=8000)
    s.set_defaults(handler=_serve)
    r = sub.add_parser("rebuild", help="ask a running server to rebuild its index, and wait for it")
    r.add_argument("--url", type=http_url, default="http://127.0.0.1:8000")
    r.add_argument("--key", help="admin key (default: SAE_SEARCH_ADMIN_KEY)")
    r.add_argument("--corpus", type=file_name, help="corpus file inside the server's data directory")
    r.add_argument("--embeddings", type=file_name, help="embeddings file inside the server's data directory")
    r.add_argument("--no-wait", action="store_true", help="return once the job is accepted")
    r.set_defaults(handler=_rebuild)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        p = parser()
        args = p.parse_args(argv)
        if args.log_level is None:  # a bad setting is a setting's error (exit 1), a bad flag a usage error (2)
            args.log_level = os.environ.get("SAE_SEARCH_LOG_LEVEL", "").strip() or "INFO"
            if args.log_level.upper() not in LEVELS:
                raise InvalidArgument(f"invalid setting: SAE_SEARCH_LOG_LEVEL must be one of {', '.join(LEVELS)}, "
                                      f"got {args.log_level!r}")
        elif args.log_level.upper() not in LEVELS:
            p.error(f"--log-level must be one of {', '.join(LEVELS)}, got {args.log_level!r}")
        configure_logging(args.log_level)
        return int(args.handler(args) or 0)
    except SaeSearchError as exc:
        sys.stderr.write(f"sae-search: error: {exc}\n")
        return 2 if isinstance(exc, UsageError) else 1
    except OSError as exc:
        sys.stderr.write(f"sae-search: error: {os_error_text(exc)}\n")
        return 1
    except MemoryError:
        sys.stderr.write("sae-search: error: out of memory\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
