"""Benchmark: one query's embedding on the CPU three ways, interleaved query by query so that they share the
machine's moods: the library's forward (`Embedder(lean_query=False)`), and the lean encoder
(indexer/query_encoder.py) with float32 and with bfloat16 matrices. One thread, as the service embeds.

Queries are the steering benchmark's query texts, plus with --index the title of every --every-th document.
Per path: p50 and p90 milliseconds over --reps passes, each pass's p50, and the cosine of its vectors with the
library's. With --index, each lean path's plain top 10 over that index against the library vector's: how many
queries keep the same ten in the same order, and the mean share of the ten they keep.

    python bench/query_embed.py --index /tmp/full_idx10

Prints one JSON line per path, appended to --out."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cases import query_texts  # noqa: E402
from indexer.embed import Embedder  # noqa: E402
from indexer.query_encoder import native_bf16  # noqa: E402

PATHS = {"library": {"lean_query": False}, "lean float32": {"query_precision": "float32"},
         "lean bfloat16": {"query_precision": "bfloat16"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=None, help="built index: add titles, compare top 10s")
    ap.add_argument("--every", type=int, default=400, help="with --index, one title per this many documents")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "query_embed.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    texts = query_texts()
    data = None
    if args.index is not None:
        from indexer.artifacts import load_index

        data = load_index(args.index, verify=False)
        texts += [t.split(". ")[0] for t in data.corpus.texts()[:: args.every]]
    embedders = {name: Embedder(device="cpu", **kw) for name, kw in PATHS.items()}
    for e in embedders.values():
        for t in texts[:5]:
            e.embed_query(t)
    ms: dict[str, list[list[float]]] = {name: [] for name in PATHS}
    for rep in range(args.reps):
        for name in PATHS:
            ms[name].append([])
        for i, text in enumerate(texts):
            names = list(PATHS)
            for name in names[(i + rep) % 3:] + names[: (i + rep) % 3]:  # each path first in turn
                t0 = time.perf_counter()
                embedders[name].embed_query(text)
                ms[name][-1].append(1000 * (time.perf_counter() - t0))
    vectors = {name: np.stack([e.embed_query(t) for t in texts]) for name, e in embedders.items()}
    base = {"queries": len(texts), "reps": args.reps, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "native_bf16": native_bf16(), "torch": torch.__version__,
            "date": dt.datetime.now().isoformat(timespec="seconds")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as fh:
        for name in PATHS:
            every = [v for run in ms[name] for v in run]
            cos = np.einsum("nd,nd->n", vectors[name], vectors["library"])
            rec = {**base, "path": name, "p50_ms": round(statistics.median(every), 2),
                   "p90_ms": round(float(np.percentile(every, 90)), 2),
                   "pass_p50_ms": [round(statistics.median(run), 2) for run in ms[name]],
                   "min_cos": round(float(cos.min()), 7), "mean_cos": round(float(cos.mean()), 7)}
            if data is not None and name != "library":
                rec.update(top10_agreement(data, vectors[name], vectors["library"]))
            line = json.dumps(rec)
            fh.write(line + "\n")
            print(line, flush=True)


def top10_agreement(data, ours: np.ndarray, reference: np.ndarray) -> dict[str, float | int]:
    """Plain top 10s of query vectors ours (q, d) against reference (q, d) over a loaded index."""
    from indexer.search import Searcher

    searcher = Searcher(data)
    same, kept = 0, []
    for a, b in zip(ours, reference):
        mine = [h.row for h in searcher.search(a, 10, []).hits]
        theirs = [h.row for h in searcher.search(b, 10, []).hits]
        same += mine == theirs
        kept.append(len(set(mine) & set(theirs)) / 10)
    return {"top10_same_order": same, "top10_kept": round(float(np.mean(kept)), 4)}


if __name__ == "__main__":
    main()
