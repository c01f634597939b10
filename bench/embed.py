"""Benchmark: the embedding model's throughput (documents per second) on a device, one query's latency, and
agreement with the shared precomputed embeddings.

Documents are the rows of --corpus (default: the shared corpus), embedded as the pipeline embeds them
(`Corpus.texts()`: title + ". " + abstract, max_seq_length 256) through `indexer.embed.Embedder` (fp16 on
CUDA, fp32 on the CPU). Each batch size embeds the first --limit rows --reps times after one warm-up batch;
its line gives every pass's docs/s and their median. Queries are the steering benchmark's query texts,
through `embed_query` (one query at a time, as the service embeds them). Agreement: cosine between the
fresh vectors and --reference (an .npy aligned with the corpus rows) over the first --check rows.

    python bench/embed.py --device cpu --limit 256 --batch-sizes 64
    python bench/embed.py --device cuda --batch-sizes 64 256 1024
    python bench/embed.py --write-sample DIR --rows 20000   # random rows of the shared corpus, to carry elsewhere

Prints one JSON line per batch size (and one for queries), appended to --out."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cases import query_texts  # noqa: E402
from indexer.corpus import load_corpus  # noqa: E402
from indexer.embed import Embedder  # noqa: E402
from indexer.tables import write_parquet  # noqa: E402

log = logging.getLogger("bench.embed")

DATA = ROOT.parent / "shared" / "data"


def write_sample(out: Path, rows: int, check: int, seed: int) -> None:
    """`rows` random rows of the shared corpus (kept in file order) to OUT/abstracts.parquet, and the shared
    embeddings of the first `check` of them to OUT/reference.npy (float16)."""
    corpus, _ = load_corpus(DATA / "arxiv_abstracts.parquet")
    pick = np.sort(np.random.default_rng(seed).choice(len(corpus), size=rows, replace=False))
    table = corpus.to_table().select(["id", "title", "abstract"]).take(pick)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(table, out / "abstracts.parquet")
    emb = np.load(DATA / "embeddings_minilm_f16.npy", mmap_mode="r")
    np.save(out / "reference.npy", np.asarray(emb[pick[:check]]))
    log.info("wrote %d rows and %d reference vectors to %s", rows, min(check, rows), out)


def _sync(embedder: Embedder) -> None:
    if embedder.device.startswith("cuda"):
        torch.cuda.synchronize()


def time_documents(embedder: Embedder, texts: list[str], batch_size: int, reps: int) -> dict[str, Any]:
    """docs/s of `reps` passes of `embed(texts)` at `batch_size`, after one warm-up batch."""
    embedder.embed(texts[:batch_size], batch_size=batch_size, progress=False)
    rates = []
    for _ in range(reps):
        _sync(embedder)
        t0 = time.perf_counter()
        embedder.embed(texts, batch_size=batch_size, progress=False)
        _sync(embedder)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return {"batch_size": batch_size, "docs": len(texts), "docs_per_s": [round(r, 1) for r in rates],
            "median_docs_per_s": round(statistics.median(rates), 1)}


def time_queries(embedder: Embedder, reps: int) -> dict[str, Any]:
    """p50 and p90 milliseconds of `embed_query` over the steering cases' query texts, `reps` passes."""
    texts = query_texts()
    for t in texts[:5]:
        embedder.embed_query(t)
    ms = []
    for _ in range(reps):
        for t in texts:
            t0 = time.perf_counter()
            embedder.embed_query(t)
            ms.append(1000 * (time.perf_counter() - t0))
    return {"queries": len(texts), "reps": reps, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2)}


def agreement(embedder: Embedder, texts: list[str], reference: Path, check: int) -> dict[str, Any]:
    """Cosines between fresh vectors of the first `check` texts and the aligned rows of `reference`."""
    ref = np.load(reference, mmap_mode="r")
    m = min(check, len(ref), len(texts))
    given = np.asarray(ref[:m], dtype=np.float32)
    given /= np.linalg.norm(given, axis=1, keepdims=True)
    cos = np.einsum("nd,nd->n", embedder.embed(texts[:m], progress=False), given)
    return {"rows": m, "min_cos": round(float(cos.min()), 6), "median_cos": round(float(np.median(cos)), 6)}


def _machine(embedder: Embedder) -> dict[str, Any]:
    gpu = torch.cuda.get_device_name() if embedder.device.startswith("cuda") else None
    return {"device": embedder.device, "gpu": gpu, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DATA / "arxiv_abstracts.parquet")
    ap.add_argument("--reference", type=Path, default=None,
                    help="embeddings aligned with --corpus rows (default: the shared ones for the shared corpus)")
    ap.add_argument("--limit", type=int, default=None, help="embed only the first LIMIT rows")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default=None, help="model directory (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--query-reps", type=int, default=3)
    ap.add_argument("--check", type=int, default=1000, help="rows compared with --reference")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "embed.jsonl")
    ap.add_argument("--write-sample", type=Path, default=None, help="only write a sample of the shared corpus")
    ap.add_argument("--rows", type=int, default=20000, help="rows in --write-sample's sample")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.write_sample:
        write_sample(args.write_sample, args.rows, args.check, args.seed)
        return
    reference = args.reference
    if reference is None and args.corpus == DATA / "arxiv_abstracts.parquet":
        reference = DATA / "embeddings_minilm_f16.npy"
    corpus, _ = load_corpus(args.corpus, limit=args.limit)
    texts = corpus.texts()
    t0 = time.perf_counter()
    embedder = Embedder(args.model, device=args.device)
    base = {"label": args.label, "model_load_s": round(time.perf_counter() - t0, 2), **_machine(embedder),
            "date": dt.datetime.now().isoformat(timespec="seconds")}
    records = [{**base, "what": "queries", **time_queries(embedder, args.query_reps)}]
    if reference is not None:
        records.append({**base, "what": "agreement", "reference": reference.name,
                        **agreement(embedder, texts, reference, args.check)})
    for bs in args.batch_sizes:
        records.append({**base, "what": "documents", **time_documents(embedder, texts, bs, args.reps)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        for r in records:
            line = json.dumps(r)
            f.write(line + "\n")
            print(line, flush=True)


if __name__ == "__main__":
    main()
