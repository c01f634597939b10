"""Steering benchmark: every steering method, traced over weights, on cases of bench/steering_cases.jsonl, through
the real service (FastAPI TestClient in-process over `create_app` with the real embedder) on a full index.

Case selection (mechanical, from the PLAIN results only, before any method is run): a candidate (query, concept,
regex pattern marking concept documents) is kept when none of the concept's words is in the query (unless
--concept-in-query: then a suppression may take away what the query asks about), and
- boost: the concept's share of the plain top 10 is at most 0.3 (there is room to lift);
- suppress: the share is at least 0.5 (the concept is a frequent facet of the plain results).
Metrics, per case then averaged: lift = steered share - plain share (boost), drop = plain share - steered share
(suppress; also relative to the plain share, since a drop cannot exceed it), fidelity = mean plain cosine
(`plain_score`) of the steered top 10 / that of the plain top 10.

How each method is called, as a user would:
- concept / residual / decode: GET /features?q=CONCEPT, first hit, POST /search with that feature id;
- concept-text: the default method with the free-text term {"concept": CONCEPT};
- mix / rewrite: {"concept": CONCEPT} (mix embeds the concept's words: x + weight x 0.8 x embed(words)).
Prints one JSON line per method and weight (also bench/out/steering_runs{TAG}.jsonl), writes per-case rows to
bench/out/steering_percase{TAG}.jsonl, the lift-fidelity plot to bench/out/steering{TAG}.png (TAG: what follows
"steering_cases" in the cases file's name, e.g. "_holdout"), and appends the added
latency of steering (in-process p50 and API p50/p99, with the machine's load average: timings on a shared
machine are noisy) to bench/out/steering_latency.jsonl.
Usage: python bench/steering.py --index DIR [--cases FILE] [--reps N] [--latency-only] [--concept-in-query]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from bench.search_latency import percentile  # noqa: E402
from indexer.corpus import corpus_from_table  # noqa: E402
from indexer.embed import Embedder  # noqa: E402
from indexer.steer_terms import SteerTerm  # noqa: E402
from indexer.tables import read_parquet  # noqa: E402
from service.app import create_app  # noqa: E402
from service.settings import Settings  # noqa: E402

log = logging.getLogger("bench.steering")
OUT = ROOT / "bench" / "out"
K = 10
# (label, method, how the term names its target, weights traced)
RUNS = [
    ("concept", "concept", "feature", [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]),
    ("concept-text", "concept", "concept", [1.0]),
    ("residual", "residual", "feature", [1.0, 2.0]),
    ("decode", "decode", "feature", [1.0, 2.0]),
    ("mix", "mix", "concept", [0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25, 1.5, 2.0]),
    ("rewrite", "rewrite", "concept", [1.0]),
]
BASELINES = ("mix", "rewrite", "residual", "decode")


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def selected(case: dict, share: float, concept_in_query: bool = False) -> bool:
    if words(case["concept"]) & words(case["query"]) and not concept_in_query:
        return False
    return share <= 0.3 if case["direction"] == "boost" else share >= 0.5


class Bench:
    def __init__(self, client: TestClient, texts: dict[str, str]) -> None:
        self.client, self.texts, self._first = client, texts, {}

    def search(self, body: dict) -> dict:
        r = self.client.post("/search", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"/search {body} -> {r.status_code} {r.text}")
        return r.json()

    def first_hit(self, word: str) -> int | None:
        if word not in self._first:
            hits = self.client.get("/features", params={"q": word, "limit": 1}).json()
            self._first[word] = hits[0]["id"] if hits else None
        return self._first[word]

    def share(self, results: list[dict], pattern: str) -> float:
        rx = re.compile(pattern, re.I)
        return float(np.mean([bool(rx.search(self.texts[r["id"]])) for r in results])) if results else 0.0


def run_method(bench: Bench, cases: list[dict], label: str, method: str, target: str, weight: float) -> tuple[dict, list[dict]]:
    rows = []
    for c in cases:
        sign = 1.0 if c["direction"] == "boost" else -1.0
        if method == "rewrite" and sign < 0:
            continue
        if target == "feature":
            term = {"feature": bench.first_hit(c["concept"]), "weight": sign * weight}
        else:
            term = {"concept": c["concept"], "weight": sign * weight}
        body = bench.search({"query": c["query"], "k": K, "steer": [term], "method": method})
        share = bench.share(body["results"], c["pattern"])
        plain_mean = float(np.mean([r["plain_score"] for r in c["_plain"]]))
        fidelity = float(np.mean([r["plain_score"] for r in body["results"]])) / plain_mean
        change = (share - c["plain_share"]) * sign
        rows.append({
            "method": label, "weight": weight, "direction": c["direction"], "query": c["query"], "concept": c["concept"],
            "plain_share": c["plain_share"], "share": round(share, 3), "change": round(change, 3),
            "fidelity": round(fidelity, 4), "features": [f["id"] for f in body["steer"][0]["features"]],
            "feature_names": [f["name"] for f in body["steer"][0]["features"]],
        })
    summary = {"method": label, "weight": weight}
    for d, key in (("boost", "lift"), ("suppress", "drop")):
        sel = [r for r in rows if r["direction"] == d]
        if sel:
            summary[f"{d}_{key}"] = round(float(np.mean([r["change"] for r in sel])), 3)
            summary[f"{d}_fidelity"] = round(float(np.mean([r["fidelity"] for r in sel])), 3)
            summary[f"{d}_cases"] = len(sel)
            if d == "suppress":
                rel = [r["change"] / r["plain_share"] for r in sel]
                summary["suppress_drop_relative"] = round(float(np.mean(rel)), 3)
    return summary, rows


def best_baseline(summaries: list[dict], direction: str, min_fidelity: float) -> dict | None:
    key = "boost_lift" if direction == "boost" else "suppress_drop"
    ok = [s for s in summaries if s["method"] in BASELINES and s.get(f"{direction}_fidelity", 0) >= min_fidelity and key in s]
    return max(ok, key=lambda s: s[key]) if ok else None


def latency(bench: Bench, embedder: Embedder, cases: list[dict], reps: int) -> dict:
    """Added latency of steering in process (plain vs steered Searcher.search on the same vectors, interleaved
    so that machine noise hits both alike), and API p50/p99 of steered searches (client wall time)."""
    searcher = bench.client.app.state.sae.searcher
    pairs = [(embedder.embed_query(c["query"]), bench.first_hit(c["concept"]), 1.0 if c["direction"] == "boost" else -1.0) for c in cases]
    plain_t, steer_t, diff = [], [], []
    by_sign: dict[float, list[float]] = {}
    for _ in range(reps):
        for x, fid, sign in pairs:
            t0 = time.perf_counter()
            searcher.search(x, K)
            t1 = time.perf_counter()
            searcher.search(x, K, [SteerTerm(sign, feature=fid)])
            t2 = time.perf_counter()
            plain_t.append(t1 - t0)
            steer_t.append(t2 - t1)
            diff.append((t2 - t1) - (t1 - t0))
            by_sign.setdefault(sign, []).append(diff[-1])
    api = []
    for _ in range(reps):
        for c in cases:
            body = {"query": c["query"], "k": K, "steer": [{"feature": bench.first_hit(c["concept"]), "weight": 1.0 if c["direction"] == "boost" else -1.0}]}
            t0 = time.perf_counter()
            bench.search(body)
            api.append(time.perf_counter() - t0)
    ms = lambda v: round(v * 1000, 2)  # noqa: E731
    return {
        "documents": len(searcher.data.corpus), "searches": len(plain_t), "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "inprocess_plain_p50_ms": ms(statistics.median(plain_t)), "inprocess_steered_p50_ms": ms(statistics.median(steer_t)),
        "inprocess_added_p50_ms": ms(statistics.median(diff)),
        "inprocess_added_boost_p50_ms": ms(statistics.median(by_sign.get(1.0, [0.0]))),
        "inprocess_added_suppress_p50_ms": ms(statistics.median(by_sign.get(-1.0, [0.0]))),
        "api_steered_p50_ms": ms(percentile(api, 0.5)), "api_steered_p99_ms": ms(percentile(api, 0.99)), "api_requests": len(api),
    }


def plot(summaries: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, d, key, goal in ((axes[0], "boost", "boost_lift", (0.85, 0.60)), (axes[1], "suppress", "suppress_drop", (0.87, 0.70))):
        for label, style in (("concept", "o-"), ("mix", "s--"), ("residual", "^:"), ("decode", "v:"), ("rewrite", "D"), ("concept-text", "*")):
            pts = sorted((s[f"{d}_fidelity"], s[key], s["weight"]) for s in summaries if s["method"] == label and key in s)
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
            for f, v, w in pts:
                ax.annotate(f"{w:g}", (f, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axvline(goal[0], color="grey", lw=0.8)
        ax.axhline(goal[1], color="grey", lw=0.8)
        ax.set_xlabel("fidelity (mean plain cosine, steered / plain)")
        ax.set_ylabel("lift" if d == "boost" else "drop")
        ax.set_title(f"{d} (labels: weight)")
        ax.invert_xaxis()
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--cases", type=Path, default=ROOT / "bench" / "steering_cases.jsonl")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of the latency measurement per case")
    ap.add_argument("--latency-only", action="store_true", help="skip the quality runs, measure latency only")
    ap.add_argument("--concept-in-query", action="store_true",
                    help="keep cases whose query holds the concept's words (suppressing what the query asks about)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    corpus = corpus_from_table(read_parquet(args.index / "docs.parquet"))
    texts = dict(zip(corpus.ids, corpus.texts()))
    embedder = Embedder()
    with TestClient(create_app(Settings(index_dir=args.index, log_level="WARNING"), embedder=embedder)) as client:
        bench = Bench(client, texts)
        cases = []
        for line in args.cases.read_text().splitlines():
            c = json.loads(line)
            plain = bench.search({"query": c["query"], "k": K})["results"]
            c["plain_share"] = bench.share(plain, c["pattern"])
            if selected(c, c["plain_share"], args.concept_in_query):
                cases.append({**c, "_plain": plain})
        # Every method runs on the same cases: those whose concept has a first /features hit.
        unmatched = [c["concept"] for c in cases if bench.first_hit(c["concept"]) is None]
        cases = [c for c in cases if bench.first_hit(c["concept"]) is not None]
        print(json.dumps({"candidates": len(args.cases.read_text().splitlines()), "boost_cases": sum(c["direction"] == "boost" for c in cases),
                          "suppress_cases": sum(c["direction"] == "suppress" for c in cases), "no_feature": unmatched}), flush=True)
        if args.latency_only:
            lat = latency(bench, embedder, cases, args.reps)
            print(json.dumps(lat), flush=True)
            with open(OUT / "steering_latency.jsonl", "a") as fh:
                fh.write(json.dumps(lat) + "\n")
            return
        summaries, per_case = [], []
        for label, method, target, weights in RUNS:
            for w in weights:
                s, rows = run_method(bench, cases, label, method, target, w)
                print(json.dumps(s), flush=True)
                summaries.append(s)
                per_case += rows
        default = next(s for s in summaries if s["method"] == "concept" and s["weight"] == 1.0)
        verdict = {"compare": "default (concept, weight 1, first /features hit) vs best baseline keeping at least its fidelity"}
        for d, key in (("boost", "boost_lift"), ("suppress", "suppress_drop")):
            b = best_baseline(summaries, d, default[f"{d}_fidelity"])
            verdict[d] = {"default": default[key], "fidelity": default[f"{d}_fidelity"],
                          "best_baseline": b and {"method": b["method"], "weight": b["weight"], key: b[key], "fidelity": b[f"{d}_fidelity"]}}
        print(json.dumps(verdict), flush=True)
        lat = latency(bench, embedder, cases, args.reps)
        print(json.dumps(lat), flush=True)
    tag = args.cases.stem.removeprefix("steering_cases")
    (OUT / f"steering_runs{tag}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in summaries + [verdict]))
    (OUT / f"steering_percase{tag}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in per_case))
    with open(OUT / "steering_latency.jsonl", "a") as fh:
        fh.write(json.dumps(lat) + "\n")
    plot(summaries, OUT / f"steering{tag}.png")


if __name__ == "__main__":
    main()
