"""Time to first answer of `make run` from a cold start, and /search latency over HTTP on the demo index.

Starts the real CLI (`sae-search build --if-stale` then `sae-search serve`) in a subprocess on a free loopback
port, waits for the first successful search, then sends a fixed number of plain and steered searches from
one client and reports p50/p99 per kind: texts made new for each request (the query is embedded every time),
and steered searches of queries already seen (answered by the server's query cache). Prints one JSON line per measurement and appends them to
bench/out/search_latency.jsonl. Usage: python bench/search_latency.py [--fresh | --index DIR] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "galaxy formation in the early universe", "exoplanet atmospheres observed with JWST",
    "large language model reasoning benchmarks", "diffusion models for image generation",
    "reinforcement learning for robot manipulation", "graph neural networks for molecules",
    "speech recognition in low-resource languages", "dark matter halo simulations",
    "adversarial robustness of vision transformers", "retrieval augmented generation",
    "gravitational wave detection", "medical image segmentation", "federated learning privacy",
    "stellar spectroscopy of white dwarfs", "autonomous driving motion planning", "machine translation evaluation",
]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of values, q in [0, 1] (bench/steering.py reports its p99s with it too)."""
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fresh", action="store_true", help="build into a new directory (time the cold build too)")
    ap.add_argument("--requests", type=int, default=300, help="searches per kind (plain, steered)")
    ap.add_argument("--index", type=Path, help="serve this existing index instead of building the demo one")
    args = ap.parse_args()
    port = free_port()
    tmp = Path(tempfile.mkdtemp())
    index = args.index or (tmp / "index" if args.fresh else ROOT / "data" / "index")
    cli = str(Path(sys.executable).parent / "sae-search")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SAE_SEARCH_LOG_LEVEL": "WARNING"}
    start = time.perf_counter()
    if args.index is None:
        subprocess.run([cli, "build", "--corpus", "data/demo_abstracts.parquet", "--embeddings", "data/demo_embeddings.npy",
                        "--out", str(index), "--if-stale"], cwd=ROOT, env=env, check=True)
    built = time.perf_counter() - start
    server = subprocess.Popen([cli, "serve", "--index", str(index), "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                first = post(f"{url}/search", {"query": QUERIES[0]})
                break
            except OSError:
                if time.perf_counter() - start > 600 or server.poll() is not None:
                    raise SystemExit("server did not answer")
                time.sleep(0.2)
        first_s = time.perf_counter() - start
        results = [{"measure": "first_search", "index": str(index), "fresh_build": args.fresh, "build_s": round(built, 2),
                    "first_search_s": round(first_s, 2)}]
        steer_feature = first["query_features"][0]["id"]
        for kind in ("plain", "steered", "steered_repeat"):
            times = []
            for i in range(args.requests):
                # A request number makes each text new, so the server's query cache never answers; the repeat
                # kind re-steers the 16 queries, as a user does, and the cache does answer.
                text = QUERIES[i % len(QUERIES)]
                body = {"query": text if kind == "steered_repeat" else f"{text} ({kind} {i})", "k": 10}
                if kind != "plain":
                    body["steer"] = [{"feature": steer_feature, "weight": 1.0}, {"feature": (steer_feature + 7) % 50, "weight": -1.0}]
                t = time.perf_counter()
                post(f"{url}/search", body)
                times.append((time.perf_counter() - t) * 1000)
            results.append({"measure": f"search_{kind}", "requests": len(times), "p50_ms": round(statistics.median(times), 2),
                            "p99_ms": round(percentile(times, 0.99), 2), "max_ms": round(max(times), 2)})
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "search_latency.jsonl", "a") as fh:
        for r in results:
            r["machine"] = f"{os.cpu_count()} cores"
            r["query_precision"] = os.environ.get("SAE_SEARCH_QUERY_PRECISION", "auto")
            sys.stdout.write(json.dumps(r) + "\n")
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
