"""Draw the demo sample: ~5,000 real abstracts from the shared corpus, stratified by primary category,
with their precomputed embeddings.

    .venv/bin/python data/make_demo.py            # writes data/demo_abstracts.parquet, data/demo_embeddings.npy

Each primary category (the first of a paper's categories; "(none)" when it has none) contributes
min(count, cap, max(1, round(fraction * count))) papers drawn at random with a fixed seed: roughly
proportional, but capped so cs.CV does not dominate, and at least one paper from every category of
the long tail. Rows are copied verbatim and sorted by id; embedding row i belongs to parquet row i.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.tables import read_parquet, write_parquet  # noqa: E402  (needs the path set above)

log = logging.getLogger("make_demo")

SHARED = ROOT.parent / "shared" / "data"
COLUMNS = ["id", "title", "abstract", "categories", "authors"]
NO_CATEGORY = "(none)"


def primary_categories(categories: list[list[str] | None]) -> list[str]:
    """The first category of each paper, or NO_CATEGORY."""
    return [c[0] if c else NO_CATEGORY for c in categories]


def stratified_rows(primary: list[str], cap: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted (m,) int64 row numbers of the sample: per primary category, a random
    min(count, cap, max(1, round(fraction * count))) of its rows."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(primary, dtype=object)
    picked = []
    # Categories in sorted order so the draw does not depend on dict or file order.
    for cat in sorted(set(primary)):
        rows = np.flatnonzero(labels == cat)
        quota = min(len(rows), cap, max(1, round(fraction * len(rows))))
        picked.append(rng.choice(rows, size=quota, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SHARED, help="folder with the shared parquet and embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="where to write the demo files")
    parser.add_argument("--cap", type=int, default=600, help="most papers per primary category")
    parser.add_argument("--fraction", type=float, default=0.075, help="share of each category drawn before the cap")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    table = read_parquet(args.source / "arxiv_abstracts.parquet", columns=COLUMNS)
    emb = np.load(args.source / "embeddings_minilm_f16.npy", mmap_mode="r")
    if emb.shape[0] != table.num_rows:
        log.error("embeddings have %d rows but the parquet has %d", emb.shape[0], table.num_rows)
        return 1
    primary = primary_categories(table.column("categories").to_pylist())
    rows = stratified_rows(primary, args.cap, args.fraction, args.seed)

    # The shared parquet is sorted by id, so sorted row numbers keep the sample sorted by id; check anyway.
    sample = table.take(pa.array(rows))
    ids = sample.column("id").to_pylist()
    if ids != sorted(ids):
        order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
        rows, sample = rows[order], sample.take(pa.array(order))
    args.out.mkdir(parents=True, exist_ok=True)
    write_parquet(sample, args.out / "demo_abstracts.parquet")
    np.save(args.out / "demo_embeddings.npy", np.asarray(emb[rows], dtype=np.float16))

    counts = Counter(primary[r] for r in rows)
    log.info("wrote %d papers from %d primary categories", len(rows), len(counts))
    for cat, n in counts.most_common():
        log.info("%-22s %5d", cat, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
