"""Reading a text of three or more words as its initials in `GET /features?q=` (indexer/wordsearch.py), measured
on long forms the corpus itself defines.

Mines "long form (ACRONYM)" pairs from the corpus's abstracts (initials spelling the acronym, stop words skipped;
pairs seen at least 10 times, long forms of at least 3 content words), then takes each long form as a feature
search's text and compares the first hit with and without the acronym reading, in one process. A first hit is
scored by the F1 between the abstracts it fires on and those that contain the long form. Prints a summary line,
writes one line per changed long form to bench/out/feature_search_acronyms.jsonl.
Usage: python bench/feature_search_acronyms.py --index DIR --corpus FILE.parquet
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import indexer.wordsearch as wordsearch  # noqa: E402
from indexer.artifacts import load_index  # noqa: E402
from indexer.catalog import Catalog  # noqa: E402
from indexer.tables import read_parquet  # noqa: E402

STOP = {"of", "for", "from", "and", "the", "a", "an", "in", "on", "to", "with", "by"}
DEFINED = re.compile(r"((?:[A-Za-z][A-Za-z-]*\s+){1,6}[A-Za-z][A-Za-z-]*)\s*\(([A-Z][A-Za-z]{1,6}?)s?\)")


def mine(texts: list[str], min_uses: int = 10) -> list[tuple[str, str]]:
    """(long form, acronym) pairs the abstracts define, the shortest run of words whose initials spell it."""
    pairs: collections.Counter = collections.Counter()
    for text in texts:
        for m in DEFINED.finditer(text):
            words, acr = m.group(1).split(), m.group(2)
            if len(acr) < 3:
                continue
            for start in range(len(words) - 1, -1, -1):
                run = words[start:]
                spelled = "".join(w[0] for w in run if w.lower() not in STOP).lower()
                if spelled == acr.lower() and run[0].lower() not in STOP:
                    pairs[(" ".join(run).lower(), acr)] += 1
                if len(spelled) >= len(acr):
                    break
    return [p for p, n in pairs.most_common() if n >= min_uses and sum(w not in STOP for w in p[0].split()) >= 3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, type=Path)
    ap.add_argument("--corpus", required=True, type=Path, help="the corpus the index was built from")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    data = load_index(args.index)
    catalog = Catalog(data)
    abstracts = read_parquet(args.corpus, columns=["abstract"])["abstract"].to_pylist()
    pairs = mine(abstracts)
    lower = [a.lower() for a in abstracts]
    with_acronyms = wordsearch.initials

    def first_hit(text: str) -> int:
        hits = catalog.search(text, limit=1)
        return hits[0].id if hits else -1

    rows = []
    for long_form, acr in pairs:
        wordsearch.initials = lambda text: []
        before = first_hit(long_form)
        wordsearch.initials = with_acronyms
        after = first_hit(long_form)
        if before == after:
            continue
        said = {i for i, t in enumerate(lower) if long_form in t}

        def f1(f: int) -> float:
            fires = set(data.inv.postings(f)[0].tolist()) if f >= 0 else set()
            return 2 * len(fires & said) / (len(fires) + len(said)) if said else 0.0

        rows.append({"long_form": long_form, "acronym": acr, "abstracts": len(said),
                     "before": [before, data.names.names[before], round(f1(before), 4)],
                     "after": [after, data.names.names[after], round(f1(after), 4)]})
    gain = np.array([r["after"][2] - r["before"][2] for r in rows])
    summary = {"long_forms": len(pairs), "changed": len(rows), "better": int((gain > 0.02).sum()),
               "worse": int((gain < -0.02).sum()), "f1_before": round(float(np.mean([r["before"][2] for r in rows])), 3),
               "f1_after": round(float(np.mean([r["after"][2] for r in rows])), 3)}
    out = ROOT / "bench" / "out" / "feature_search_acronyms.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in [summary] + rows))
    logging.disable(logging.NOTSET)
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
