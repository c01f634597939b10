"""Family steering measured against arXiv categories: does a family boost bring in papers of the family's field,
or only papers that happen to fire one of its members?

In process (`Searcher` over a full index, one thread). Each family of a fixed sample (the 12 largest, then every
20th from the 20th) gets a *home*: the primary category (arXiv archive for physics, math, q-bio and the like;
subject class for cs) most over-represented among the documents its features fire on, weighted by its share
there. Queries are documents drawn with a fixed seed, each as its own embedding: up to 12 whose plain top 10 holds
at most 3 home papers (boost, weight +1) and 12 with at least 6 (suppress, weight -1); a query keeps itself among
its results. Per query, then averaged: the change of the home share of the top 10 (lift or drop), fidelity (mean
plain cosine of the steered top 10 over that of the plain top 10), and the share of the top 10 whose score the
steer moved although it is not a home paper ("off-field"). The categories are the authors' own, read nowhere by
the method, so unlike bench/family_steering.py this does not score the method with its own evidence. Each run is
made with `steer.FAMILY_GATE` as it is and without it (every document that fires a member carrying the family, as
before the gate).
Prints one JSON line per gate and direction, and writes them to bench/out/family_categories.jsonl.
Usage: python bench/family_categories.py --index DIR
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import indexer.steer as steer  # noqa: E402
from indexer.artifacts import load_index  # noqa: E402
from indexer.search import Searcher  # noqa: E402
from indexer.steer_terms import SteerTerm  # noqa: E402

ARCHIVES = ("astro-ph", "physics", "math", "q-bio", "quant-ph", "cond-mat", "stat", "eess", "hep", "gr-qc", "nlin")
PER_KIND = 12


def field(categories: list[str]) -> str:
    """A document's field: its primary category, cut to the archive outside cs ("astro-ph.GA" -> "astro-ph")."""
    if not categories:
        return ""
    first = categories[0]
    return first.split(".")[0] if first.startswith(ARCHIVES) else first


def home(docs: np.ndarray, fields: np.ndarray, base: collections.Counter, n: int) -> str:
    """The field of the most `docs` (a family's firing documents) weighted by how over-represented it is among them
    against its share `base` of all n documents (share x log lift)."""
    counts = collections.Counter(fields[docs])
    return max((f for f in counts if f), key=lambda f: counts[f] / len(docs) * np.log(counts[f] / len(docs) / (base[f] / n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, type=Path)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    data = load_index(args.index)
    searcher = Searcher(data, threads=1)
    fam, emb = data.families, data.embeddings
    fields = np.array([field(list(c)) for c in data.corpus.categories])
    base, n = collections.Counter(fields), len(fields)
    by_size = np.argsort([len(ch) for ch in fam.children])[::-1]
    sample = [int(f) for f in by_size[:12]] + [int(f) for f in by_size[20::20]]
    rng = np.random.default_rng(1)
    gates = {"gate": steer.FAMILY_GATE, "no gate": -np.inf}
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = collections.defaultdict(list)
    for f in sample:
        members = [int(m) for m in fam.children[f]] + ([int(fam.parent[f])] if fam.parent[f] >= 0 else [])
        h = home(np.unique(np.concatenate([data.inv.postings(m)[0] for m in members])), fields, base, n)
        queries: dict[str, list] = {"boost": [], "suppress": []}
        for d in rng.permutation(n)[:400]:
            hits = searcher.search(emb[d], 10).hits
            share = float(np.mean([fields[x.row] == h for x in hits]))
            kind = "boost" if share <= 0.3 else "suppress" if share >= 0.6 else None
            if kind and len(queries[kind]) < PER_KIND:
                queries[kind].append((d, share, float(np.mean([x.plain_score for x in hits]))))
            if all(len(q) >= PER_KIND for q in queries.values()):
                break
        for name, gate in gates.items():
            steer.FAMILY_GATE = gate
            for kind, sign in (("boost", 1.0), ("suppress", -1.0)):
                for d, share, plain in queries[kind]:
                    hits = searcher.search(emb[d], 10, [SteerTerm(sign, family=f)]).hits
                    now = float(np.mean([fields[x.row] == h for x in hits]))
                    off = float(np.mean([abs(x.score - x.plain_score) > 1e-6 and fields[x.row] != h for x in hits]))
                    rows[(name, kind)].append(((now - share) * sign, float(np.mean([x.plain_score for x in hits])) / plain, off))
        steer.FAMILY_GATE = gates["gate"]
    out = []
    for (name, kind), vals in rows.items():
        change, fidelity, off = np.mean(vals, axis=0)
        out.append({"gate": name, "direction": kind, "queries": len(vals), "families": len(sample),
                    "lift" if kind == "boost" else "drop": round(float(change), 3), "fidelity": round(float(fidelity), 3),
                    "off_field_moved": round(float(off), 3)})
    (ROOT / "bench" / "out" / "family_categories.jsonl").write_text("".join(json.dumps(o) + "\n" for o in out))
    logging.disable(logging.NOTSET)
    for o in out:
        sys.stdout.write(json.dumps(o) + "\n")


if __name__ == "__main__":
    main()
