"""Family steering benchmark: does steering by a whole family move the results, and what does it cost?

In process (`Searcher` over a full index, one thread). For each family of a fixed sample (the 10 largest and
every 20th after), 8 queries are documents where none of the family's features fires (boost) and 8 where one
does (suppress), drawn with a fixed seed; each query is the document's own embedding, and the document itself
is left out of its results. A result *carries* the family when one of its features fires on it. Metrics, per
query then averaged: the carrying share of the top 10, plain and steered; fidelity = mean plain cosine of the
steered top 10 / that of the plain top 10; and the search's time (p50 of 2 runs of each query).

Caveat: "carries" is read from the same codes the `concept` method uses as evidence, so these figures show
that a family steer acts and what it costs in fidelity, not how well it matches a reader's idea of the family
(bench/steering.py measures single features against hand-written patterns).
Prints one JSON line per method, weight and family size class, and writes them to bench/out/family_steering.jsonl.
Usage: python bench/family_steering.py --index DIR [--methods concept,residual]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.artifacts import load_index  # noqa: E402
from indexer.filters import Target  # noqa: E402
from indexer.search import Searcher  # noqa: E402
from indexer.steer_terms import SteerTerm  # noqa: E402

OUT = ROOT / "bench" / "out"
FAMILIES = list(range(10)) + list(range(20, 200, 20))
QUERIES = 8
K = 10
LARGE = 48
"""Families of at least this many features are 'large' (the 25 largest of the shared corpus's 208)."""


def run(searcher: Searcher, method: str, weight: float, seed: int = 3) -> list[dict]:
    data = searcher.data
    sizes = data.families.sizes()
    rng = np.random.default_rng(seed)
    rows = []
    for fam in FAMILIES:
        if fam >= len(sizes):
            break
        # One of the family's features fires on the document: what `exclude` with this family leaves out.
        carries = np.zeros(len(data.corpus), dtype=bool)
        carries[searcher.filters.firing_docs(Target(family=fam))] = True
        pool = np.flatnonzero(carries if weight < 0 else ~carries)
        for doc in rng.choice(pool, min(QUERIES, len(pool)), replace=False):
            x = data.embeddings[doc].astype(np.float32)
            plain = [h for h in searcher.search(x, K + 1).hits if h.row != doc][:K]
            times = []
            for _ in range(2):
                start = time.perf_counter()
                out = searcher.search(x, K + 1, [SteerTerm(weight, family=fam)], method=method)
                times.append(1000 * (time.perf_counter() - start))
            steered = [h for h in out.hits if h.row != doc][:K]
            rows.append({
                "family": fam, "size": int(sizes[fam]),
                "plain_share": float(carries[[h.row for h in plain]].mean()),
                "share": float(carries[[h.row for h in steered]].mean()),
                "fidelity": float(np.mean([h.plain_score for h in steered]) / np.mean([h.plain_score for h in plain])),
                "ms": statistics.median(times),
            })
    return rows


def summary(method: str, weight: float, rows: list[dict]) -> list[dict]:
    out = []
    for label, keep in (("all", lambda r: True), (f"size>={LARGE}", lambda r: r["size"] >= LARGE),
                        (f"size<{LARGE}", lambda r: r["size"] < LARGE)):
        sel = [r for r in rows if keep(r)]
        if not sel:
            continue
        change = np.mean([r["share"] - r["plain_share"] for r in sel])
        out.append({
            "method": method, "weight": weight, "families": label, "queries": len(sel),
            "plain_share": round(float(np.mean([r["plain_share"] for r in sel])), 3),
            "share": round(float(np.mean([r["share"] for r in sel])), 3),
            "lift" if weight > 0 else "drop": round(float(change if weight > 0 else -change), 3),
            "fidelity": round(float(np.mean([r["fidelity"] for r in sel])), 3),
            "p50_ms": round(float(np.median([r["ms"] for r in sel])), 2),
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--methods", default="concept,residual", help="comma-separated steering methods")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    searcher = Searcher(load_index(args.index, verify=False))
    with open(OUT / "family_steering.jsonl", "a") as fh:
        for method in args.methods.split(","):
            for weight in (1.0, -1.0, 2.0, -2.0):
                for line in summary(method, weight, run(searcher, method, weight)):
                    print(json.dumps(line), flush=True)
                    fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
