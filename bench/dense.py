"""Dense search over an index's embeddings: the exact Flat index against float16 rows (SQfp16, the default)
and 8-bit rows (SQ8), both made exact by the float32 rescoring of `indexer.index.nearest`.

For every FAISS type: bytes stored, its rows' largest error, p50 time of the bare FAISS scan at k = 10 and
1,000 (one OpenMP thread, types interleaved query by query so that machine noise hits them alike), p50 of
`nearest` at k = 10, and for how many queries the scores of `nearest`'s top 10 and top 100 equal the exact
ones (brute force in float32, within 1e-6). Queries are the steering benchmark's query texts, embedded with
the default model. Prints one JSON line per type and appends them to bench/out/dense.jsonl.
Usage: python bench/dense.py --index DIR [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cases import query_texts  # noqa: E402
from indexer.embed import Embedder  # noqa: E402
from indexer.index import build_faiss, code_error, nearest  # noqa: E402

TYPES = ["Flat", "SQfp16", "SQ8"]


def queries() -> np.ndarray:
    """(q, d) float32 unit rows: every distinct query text of the steering case sets."""
    texts = query_texts()
    embedder = Embedder(device="cpu")
    return np.stack([embedder.embed_query(t) for t in texts])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True, help="index directory (its embeddings.npy is searched)")
    ap.add_argument("--reps", type=int, default=3, help="timed passes over the queries")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    emb = np.load(Path(args.index) / "embeddings.npy")
    q = queries()
    # The exact top-100 scores; rows are compared by score, since float32 sums in another order may swap ties.
    exact = -np.sort(-(q @ emb.T), axis=1)[:, :100]
    built = {t: build_faiss(emb, t) for t in TYPES}
    errors = {t: code_error(ix, emb) for t, ix in built.items()}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.reps):
        for x in q:
            for t, ix in built.items():
                for label, run in (
                    ("scan10", lambda: ix.search(x[None, :], 10)),
                    ("scan1000", lambda: ix.search(x[None, :], 1000)),
                    ("nearest10", lambda: nearest(ix, emb, x, 10, errors[t])),
                ):
                    start = time.perf_counter()
                    run()
                    times.setdefault((t, label), []).append(time.perf_counter() - start)
    lines = []
    for t, ix in built.items():
        same10 = same100 = 0
        for i, x in enumerate(q):
            same10 += np.allclose(nearest(ix, emb, x, 10, errors[t])[0], exact[i, :10], rtol=0, atol=1e-6)
            same100 += np.allclose(nearest(ix, emb, x, 100, errors[t])[0], exact[i, :100], rtol=0, atol=1e-6)
        labels = ("scan10", "scan1000", "nearest10")
        ms = {label: round(1000 * statistics.median(times[(t, label)]), 3) for label in labels}
        lines.append({
            "type": t, "documents": int(ix.ntotal), "stored_mb": round(faiss.serialize_index(ix).nbytes / 2**20, 1),
            "max_row_error": errors[t], **{f"{k}_p50_ms": v for k, v in ms.items()},
            "queries": len(q), "top10_exact": same10, "top100_exact": same100,
            "load_average_1m": round(os.getloadavg()[0], 2),
        })
    out = ROOT / "bench" / "out" / "dense.jsonl"
    with open(out, "a") as fh:
        for line in lines:
            print(json.dumps(line))
            fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
