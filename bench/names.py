"""Benchmark: feature names, trust scores and families for a k=32, 6,144-latent TopK SAE over the full corpus.

Run from the project root:
    .venv/bin/python -m bench.names                 # names + families, timings, samples -> bench/out/names_<date>.json
    .venv/bin/python -m bench.names --compare       # also: own tokenizer vs CountVectorizer, family methods, shuffled names

The SAE is cached in /tmp/sae_bench, or --sae-dir (trained here with indexer.train.train_sae when missing)."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import replace
import json
import logging
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer.codes import SparseCodes, feature_stats, invert
from indexer.families import FamilyConfig, build_families, cooccurrence
from indexer.names import FeatureNames, NamingConfig, feature_trust, name_features
from indexer.sae import TopKSae, encode_array, load_sae, save_sae
from indexer.tables import read_parquet
from indexer.terms import STOP_WORDS, build_term_matrix, clean_text
from indexer.train import TrainConfig, train_sae

log = logging.getLogger("bench.names")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SAE_CACHE = Path("/tmp/sae_bench")


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def load_or_train(x: np.ndarray, epochs: int, cache: Path = SAE_CACHE) -> tuple[TopKSae, dict[str, Any]]:
    """The cached k=32, 6144-latent SAE in `cache`, trained on x (m, 384) float32 first if missing."""
    if (cache / "sae.json").is_file():
        sae, info = load_sae(cache)
        log.info("loaded cached SAE from %s", cache)
        return sae, info.get("metrics", {})
    cfg = TrainConfig(k=32, latents=6144, epochs=epochs, progress=False, device="cpu")
    res = train_sae(x, cfg)
    save_sae(res.sae, cache, res.metrics)
    return res.sae, res.metrics


def load_texts(n: int | None) -> list[str]:
    """`title + ". " + abstract` of the first n corpus rows (all when None)."""
    table = read_parquet(DATA / "arxiv_abstracts.parquet", columns=["title", "abstract"])
    if n is not None:
        table = table.slice(0, n)
    return [f"{t}. {a}" for t, a in zip(table.column("title").to_pylist(), table.column("abstract").to_pylist())]


def tokenizer_race(texts: list[str]) -> dict[str, Any]:
    """Seconds to build a binary unigram+bigram matrix with our tokenizer vs sklearn's CountVectorizer."""
    from sklearn.feature_extraction.text import CountVectorizer

    t0 = time.perf_counter()
    tm = build_term_matrix(texts, min_df=3)
    t1 = time.perf_counter()
    cv = CountVectorizer(
        preprocessor=clean_text,
        token_pattern=r"(?u)\b[^\W\d_][\w'-]*\b",
        stop_words=sorted(STOP_WORDS),
        ngram_range=(1, 2),
        min_df=3,
        binary=True,
        dtype=np.uint8,
    )
    x = cv.fit_transform(texts)
    t2 = time.perf_counter()
    return {
        "docs": len(texts),
        "own_s": round(t1 - t0, 2),
        "own_terms": tm.n_terms,
        "own_nnz": int(len(tm.doc_terms)),
        "countvectorizer_s": round(t2 - t1, 2),
        "countvectorizer_terms": int(x.shape[1]),
        "countvectorizer_nnz": int(x.nnz),
        "ratio_cv_over_own": round((t2 - t1) / (t1 - t0), 2),
    }


def shuffled_trust(inv: Any, names: FeatureNames, cfg: NamingConfig, tm: Any) -> dict[str, float]:
    """Trust of each live feature when given another random live feature's name: an honest score gives ~0.5."""
    rng = np.random.default_rng(1)
    live = np.flatnonzero(np.array(names.status) == "live")
    sample = rng.choice(live, size=min(500, len(live)), replace=False)
    other = rng.permutation(sample)
    scores = []
    for f, g in zip(sample, other):
        ids = name_term_ids(tm, names.names[g])
        scores.append(feature_trust(tm, inv, int(f), ids, None, cfg, rng))
    s = np.array(scores)
    return {"features": int(len(s)), "mean": round(float(s.mean()), 3), "p90": round(float(np.quantile(s, 0.9)), 3)}


def name_term_ids(tm: Any, name: str) -> list[int]:
    """Term ids a TF-IDF name stands for: each one-word phrase's unigram, each longer phrase's bigrams."""
    ids = []
    for phrase in name.split(", "):
        words = phrase.split(" ")
        grams = words if len(words) == 1 else [f"{a} {b}" for a, b in zip(words, words[1:])]
        ids += [i for i in map(tm.term_id, grams) if i >= 0]
    return ids


def presence_by_rank(inv: Any, names: FeatureNames, tm: Any, n: int = 300) -> dict[str, float]:
    """Share of a feature's firing documents that contain one of its name's terms, by activation rank band,
    averaged over n random live features with >= 640 firing documents; plus the same share for random documents."""
    rng = np.random.default_rng(3)
    counts = inv.counts()
    pool = np.flatnonzero((np.array(names.status) == "live") & (counts >= 640))
    bands = [(0, 40), (40, 80), (80, 160), (160, 320), (320, 640)]
    shares: dict[str, list[float]] = {f"{lo}-{hi}": [] for lo, hi in bands} | {"random docs": []}
    for f in rng.choice(pool, size=min(n, len(pool)), replace=False):
        ids = name_term_ids(tm, names.names[f])
        docs, _ = inv.postings(int(f))
        for key, d in [(f"{lo}-{hi}", docs[lo:hi]) for lo, hi in bands] + [("random docs", rng.integers(0, tm.n_docs, 640))]:
            hit = np.zeros(len(d), dtype=bool)
            for t in ids:
                hit |= tm.contains(t, np.asarray(d, dtype=np.int64))
            shares[key].append(float(hit.mean()))
    return {k: round(float(np.mean(v)), 3) for k, v in shares.items()}


def family_quality(codes: SparseCodes, w_dec: np.ndarray, names: FeatureNames, method: str) -> dict[str, Any]:
    """Families built on even documents, judged on odd ones: how often the parent fires where a child fires
    (vs a random denser eligible parent) and how many top terms parent and child share (vs random)."""
    even = SparseCodes(codes.indices[0::2], codes.values[0::2], codes.n_features)
    odd = SparseCodes(codes.indices[1::2], codes.values[1::2], codes.n_features)
    st = feature_stats(invert(even), even.n_docs)
    t0 = time.perf_counter()
    fam = build_families(even, st, w_dec, names, FamilyConfig(method=method))
    secs = time.perf_counter() - t0
    c_odd = cooccurrence(odd)
    n_odd = c_odd.diagonal().astype(np.float64)
    rng = np.random.default_rng(2)
    eligible = np.flatnonzero((st.density > 0) & (st.density <= 0.2))
    contain, contain_rand, overlap, overlap_rand = [], [], [], []

    def jac(a: int, b: int) -> float:
        sa, sb = set(names.terms[a]), set(names.terms[b])
        return len(sa & sb) / max(len(sa | sb), 1)

    for p, kids in zip(fam.parent, fam.children):
        for c in kids:
            r = int(rng.choice(eligible))
            overlap.append(jac(int(p), int(c)))
            overlap_rand.append(jac(r, int(c)))
            if n_odd[c] > 0:
                contain.append(c_odd[p, c] / n_odd[c])
                contain_rand.append(c_odd[r, c] / n_odd[c])
    sizes = fam.sizes()
    return {
        "method": method,
        "seconds": round(secs, 1),
        "families": int(len(sizes)),
        "features_in_families": int(sizes.sum()) if len(sizes) else 0,
        "size_min_median_max": [int(sizes.min()), float(np.median(sizes)), int(sizes.max())] if len(sizes) else [],
        "heldout_parent_given_child": round(float(np.mean(contain)), 3),
        "random_parent_given_child": round(float(np.mean(contain_rand)), 3),
        "term_jaccard_parent_child": round(float(np.mean(overlap)), 3),
        "term_jaccard_random": round(float(np.mean(overlap_rand)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=None, help="use only the first N documents")
    ap.add_argument("--epochs", type=int, default=4, help="SAE training epochs when no cached SAE exists")
    ap.add_argument("--sae-dir", type=Path, default=SAE_CACHE, help="cached SAE (trained here when missing)")
    ap.add_argument("--repeats", type=int, default=1, help="time naming + families this many times, report the median")
    ap.add_argument("--compare", action="store_true", help="also race tokenizers and compare family methods")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    texts = load_texts(args.docs)
    emb = np.load(DATA / "embeddings_minilm_f16.npy", mmap_mode="r")[: len(texts)]
    x = np.asarray(emb, dtype=np.float32)
    sae, sae_metrics = load_or_train(x, args.epochs, args.sae_dir)
    idx, val = encode_array(sae, x)
    del x
    codes = SparseCodes(indices=idx, values=val, n_features=sae.n)
    inv = invert(codes)
    stats = feature_stats(inv, codes.n_docs)
    w_dec = sae.weights_numpy()["W_dec"]
    rss_before = peak_rss_gb()
    log.info("codes ready: %d docs, %d features, peak RSS %.2f GB", codes.n_docs, codes.n_features, rss_before)

    ncfg, fcfg = NamingConfig(), FamilyConfig()
    t_names, t_fams = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        names = name_features(texts, inv, stats, ncfg)
        t1 = time.perf_counter()
        fams = build_families(codes, stats, w_dec, names, fcfg)
        t2 = time.perf_counter()
        t_names.append(t1 - t0)
        t_fams.append(t2 - t1)
    rss_after = peak_rss_gb()

    status = np.array(names.status)
    live = status == "live"
    trust = names.trust
    sizes = fams.sizes()
    rng = np.random.default_rng(0)
    sample_fams = list(range(min(5, len(sizes)))) + sorted(
        rng.choice(np.arange(5, len(sizes)), size=min(5, max(len(sizes) - 5, 0)), replace=False).tolist()
    )
    sample_feats = sorted(rng.choice(np.flatnonzero(live), size=min(12, int(live.sum())), replace=False).tolist())
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {resource.getpagesize()}B pages".strip(),
        "cpu_cores": len(__import__("os").sched_getaffinity(0)),
        "note": "2-core machine shared with other helpers' jobs: timings are noisy",
        "docs": codes.n_docs,
        "features": codes.n_features,
        "sae": {"dir": str(args.sae_dir)} | {k: sae_metrics.get(k) for k in ("epochs_run", "train_nmse", "dead_fraction")},
        "naming_s": [round(t, 1) for t in t_names],
        "families_s": [round(t, 1) for t in t_fams],
        "naming_s_median": round(float(np.median(t_names)), 1),
        "families_s_median": round(float(np.median(t_fams)), 1),
        "peak_rss_gb_before_naming": round(rss_before, 2),
        "peak_rss_gb": round(rss_after, 2),
        "status_counts": {s: int((status == s).sum()) for s in ("live", "dense", "dead")},
        "live_trust_ge_0.8": round(float((trust[live] >= 0.8).mean()), 3),
        "live_trust_ge_0.9": round(float((trust[live] >= 0.9).mean()), 3),
        "live_trust_quantiles": {q: round(float(np.quantile(trust[live], q)), 3) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "families": int(len(sizes)),
        "family_size": {
            "min": int(sizes.min()) if len(sizes) else 0,
            "median": float(np.median(sizes)) if len(sizes) else 0,
            "max": int(sizes.max()) if len(sizes) else 0,
        },
        "features_in_families": int((fams.feature_family >= 0).sum()),
        "sample_families": [
            {
                "id": int(i),
                "name": fams.names[i],
                "parent": int(fams.parent[i]),
                "children": [names.names[c] for c in fams.children[i][:8]],
                "size": int(sizes[i]),
            }
            for i in sample_fams
        ],
        "sample_features": [
            {
                "id": int(f),
                "name": names.names[f],
                "trust": round(float(trust[f]), 3),
                "density": round(float(stats.density[f]), 5),
                "description": names.descriptions[f],
            }
            for f in sample_feats
        ],
    }
    if args.compare:
        tm = build_term_matrix(texts, ncfg.min_df)
        result["shuffled_name_trust"] = shuffled_trust(inv, names, ncfg, tm)
        tail = name_features(texts, inv, stats, replace(ncfg, trust_positives=0), terms=tm).trust[live]
        result["trust_on_all_other_firing_docs"] = {
            "live_trust_ge_0.8": round(float((tail >= 0.8).mean()), 3),
            "quantiles": {q: round(float(np.quantile(tail, q)), 3) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        }
        result["presence_by_activation_rank"] = presence_by_rank(inv, names, tm)
        del tm
        result["tokenizer_race"] = tokenizer_race(texts[:20000])
        methods = ("cooccurrence", "decoder")
        result["family_methods"] = [family_quality(codes, w_dec, names, m) for m in methods]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"names_{result['date']}.json"
    path.write_text(json.dumps(result, indent=2))
    log.info("wrote %s", path)
    print_summary = {k: v for k, v in result.items() if k not in ("sample_families", "sample_features")}
    log.info("%s", json.dumps(print_summary, indent=2))


if __name__ == "__main__":
    main()
