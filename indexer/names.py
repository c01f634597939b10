"""Feature names without an LLM: distinctive terms of each feature's top documents, and a trust score saying how
well the name predicts, on documents it was not made from, where the feature fires.

Terms are ranked by `terms.distinctive_terms` (pointwise KL divergence against the corpus) over the feature's
top documents, and a name is the best 1-3 of them as readable phrases (`phrases.select_phrases`).

Trust: the name is made from the strongest `n_name = min(top_docs, max(1, firing // 2))` documents. The next
`trust_positives` firing documents by activation (all the other firing documents when 0; sampled down to
`trust_negatives`) are the positives, `trust_negatives` random non-firing documents the negatives; each is scored
by the summed scores of the name's terms it contains, and trust is the AUROC of that score. A name that says
nothing about the feature scores ~0.5. The default looks at the next-strongest documents rather than all of them
because a TopK feature's weakest firings are diffuse: on the full corpus the share of a feature's documents
containing its name's terms falls steadily with activation rank (BENCHMARKS.md has both numbers).
Dead features, and features with fewer than `min_heldout` held-out documents (too rare to check), get trust 0
rather than NaN, so that trust always sorts; a name with no terms, or no negatives to compare with, scores 0.5
(it predicts nothing)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from indexer.codes import FeatureStats, InvertedLists
from indexer.errors import InvalidArgument
from indexer.phrases import select_phrases
from indexer.terms import TermMatrix, build_term_matrix, distinctive_terms, in_postings

log = logging.getLogger(__name__)

MIN_NAME_WORDS = 2
MAX_NAME_WORDS = 5
# Candidates considered when building a name: wide enough that a bigram ranked a few places below its own
# unigram can still replace it, narrow enough that the name stays about the top terms.
_NAME_WINDOW = 10


DENSE_SHARE = 0.2
"""Default share of documents above which a feature is "dense": too common to name a topic, so it is left out of
families too (`FamilyConfig.dense_threshold`)."""


@dataclass
class NamingConfig:
    """How feature names, descriptions and trust scores are made."""

    top_docs: int = 40
    """Strongest-activating documents a name is made from (fewer for rare features, see module docstring)."""
    max_name_terms: int = 3
    """Most terms (unigrams or bigrams) in a name; the name has 2-5 words in total."""
    description_terms: int = 10
    """Terms listed in the description and in `FeatureNames.terms`."""
    dense_threshold: float = DENSE_SHARE
    """A feature firing on more than this share of documents has status "dense"."""
    trust_negatives: int = 2000
    """Non-firing documents sampled per feature for the trust AUROC (also the cap on held-out positives)."""
    seed: int = 0
    """Seed of the trust sampling."""
    min_df: int = 3
    """Terms in fewer documents than this are not in the vocabulary (typos, one-off tokens)."""
    name_min_ratio: float = 0.3
    """Terms after a name's first must score at least this share of the best term's score: much weaker terms
    make a name longer, not clearer (a name still gets a second word when it would have only one)."""
    trust_positives: int = 40
    """Held-out firing documents used as trust positives: the next-strongest after the naming documents;
    0 uses every other firing document."""
    min_heldout: int = 3
    """Fewest held-out firing documents needed to compute trust; rarer features get trust 0."""

    def __post_init__(self) -> None:
        if self.top_docs < 1:
            raise InvalidArgument(f"top_docs must be >= 1, got {self.top_docs}")
        if not 1 <= self.max_name_terms <= MAX_NAME_WORDS:
            raise InvalidArgument(f"max_name_terms must be in 1..{MAX_NAME_WORDS}, got {self.max_name_terms}")
        if self.description_terms < 1:
            raise InvalidArgument(f"description_terms must be >= 1, got {self.description_terms}")
        if not 0.0 < self.dense_threshold <= 1.0:
            raise InvalidArgument(f"dense_threshold must be in (0, 1], got {self.dense_threshold}")
        if self.trust_negatives < 10:
            raise InvalidArgument(f"trust_negatives must be >= 10, got {self.trust_negatives}")
        if self.min_df < 1:
            raise InvalidArgument(f"min_df must be >= 1, got {self.min_df}")
        if not 0.0 <= self.name_min_ratio <= 1.0:
            raise InvalidArgument(f"name_min_ratio must be in [0, 1], got {self.name_min_ratio}")
        if self.trust_positives < 0:
            raise InvalidArgument(f"trust_positives must be >= 0, got {self.trust_positives}")
        if self.min_heldout < 1:
            raise InvalidArgument(f"min_heldout must be >= 1, got {self.min_heldout}")


@dataclass
class FeatureNames:
    """Name, description, distinctive terms, trust and status of every feature."""

    names: list[str]
    """(n_features,) 2-5 word names, e.g. "dark matter, halos" (an LLM's name may have one word, `llm_names`);
    "dead feature 17" for dead features."""
    descriptions: list[str]
    """(n_features,) one-line descriptions listing the top terms and the firing rate."""
    terms: list[list[str]]
    """(n_features,) top distinctive terms per feature, best first (empty for dead features)."""
    trust: np.ndarray
    """(n_features,) float32 in [0, 1]: held-out AUROC of the name's terms against firing (0 for a dead or too rare
    feature, 0.5 for a name with no terms)."""
    status: list[str]
    """(n_features,) "live" | "dead" | "dense"."""


def feature_status(counts: np.ndarray, density: np.ndarray, dense_threshold: float) -> list[str]:
    """Status of each feature from its (n_features,) firing counts and float32 densities."""
    status = np.where(counts == 0, "dead", np.where(density > dense_threshold, "dense", "live"))
    return [str(s) for s in status]


def make_name(
    tm: TermMatrix, ranked: np.ndarray, scores: np.ndarray, feature: int, max_terms: int, min_ratio: float
) -> tuple[str, list[int]]:
    """A 2-5 word name from ranked term ids and their scores (best first), and the term ids it stands for."""
    window, window_scores = ranked[:_NAME_WINDOW], scores[:_NAME_WINDOW]
    strong = window[window_scores >= min_ratio * window_scores[0]] if len(window) else window
    phrases, used = select_phrases(tm, strong, max_terms, MAX_NAME_WORDS, window_scores[: len(strong)])
    # One-word names are too vague: let weaker terms in, then the whole ranking, until a second word fits.
    for wider, wider_scores in ((window, window_scores), (ranked, scores)):
        if sum(len(p.split(" ")) for p in phrases) >= MIN_NAME_WORDS:
            break
        phrases, used = select_phrases(tm, wider, max(max_terms, 2), MAX_NAME_WORDS, wider_scores)
    n_words = sum(len(p.split(" ")) for p in phrases)
    if n_words == 0:
        return f"unnamed feature {feature}", []
    if n_words < MIN_NAME_WORDS:
        return f"{phrases[0]} feature {feature}", used
    return ", ".join(phrases), used


def auroc_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUROC of small non-negative integer scores (ties count half): P(score_pos > score_neg)."""
    if len(pos) == 0 or len(neg) == 0:
        return 0.5
    size = int(max(pos.max(), neg.max())) + 1
    hp = np.bincount(pos, minlength=size).astype(np.float64)
    hn = np.bincount(neg, minlength=size).astype(np.float64)
    below = np.cumsum(hn) - hn
    return float((hp * (below + 0.5 * hn)).sum() / (len(pos) * len(neg)))


def sample_negatives(firing_sorted: np.ndarray, n_docs: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `n` distinct random documents (int64) outside `firing_sorted` (ascending int ids)."""
    n_free = n_docs - len(firing_sorted)
    if n_free <= 0:
        return np.empty(0, dtype=np.int64)
    if n_free <= 4 * n:
        free = np.setdiff1d(np.arange(n_docs), firing_sorted, assume_unique=True)
        return rng.choice(free, size=min(n, len(free)), replace=False)
    # Rejection sampling: the firing share is at most 3/4 here, so 1/(1-share) * 1.5 draws leave enough.
    draws = int(n * 1.5 * n_docs / n_free) + 16
    cand = np.unique(rng.integers(0, n_docs, size=draws))
    got = rng.permutation(cand[~in_postings(firing_sorted, cand)])[:n]
    if len(got) < n:
        # Rare, and only in small corpora, where the draws collide often: take them from the free list.
        free = np.setdiff1d(np.arange(n_docs), firing_sorted, assume_unique=True)
        return rng.choice(free, size=n, replace=False)
    return got


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUROC of any real scores (ties count half), via their ranks among the distinct values."""
    levels = np.unique(np.concatenate([pos, neg]), return_inverse=True)[1].ravel()
    return auroc_counts(levels[: len(pos)], levels[len(pos) :])


def name_trust(
    tm: TermMatrix, term_ids: list[int], weights: np.ndarray | None, heldout: np.ndarray, negatives: np.ndarray
) -> float:
    """AUROC of a document's score (summed `weights`, default 1, of the `term_ids` it contains) for held-out
    firing docs vs non-firing docs."""
    if not term_ids:
        return 0.5
    w = np.ones(len(term_ids)) if weights is None else np.asarray(weights, dtype=np.float64)
    pos = np.zeros(len(heldout), dtype=np.float64)
    neg = np.zeros(len(negatives), dtype=np.float64)
    for t, wt in zip(term_ids, w):
        pos += wt * tm.contains(t, heldout)
        neg += wt * tm.contains(t, negatives)
    return auroc(pos, neg)


def trust_split(n_fire: int, cfg: NamingConfig) -> int:
    """How many of the strongest firing documents a name is made from; the rest are held out for trust."""
    return min(cfg.top_docs, max(1, n_fire // 2))


def feature_trust(
    tm: TermMatrix,
    inv: InvertedLists,
    feature: int,
    term_ids: list[int],
    weights: np.ndarray | None,
    cfg: NamingConfig,
    rng: np.random.Generator,
) -> float:
    """Held-out trust of a name (its `term_ids`, optionally weighted) for one feature; 0 when too few
    held-out documents."""
    docs, _ = inv.postings(feature)
    n_name = trust_split(len(docs), cfg)
    heldout = docs[n_name : n_name + cfg.trust_positives] if cfg.trust_positives else docs[n_name:]
    if len(heldout) < cfg.min_heldout:
        return 0.0
    if len(heldout) > cfg.trust_negatives:
        heldout = rng.choice(heldout, size=cfg.trust_negatives, replace=False)
    negatives = sample_negatives(np.sort(docs), tm.n_docs, cfg.trust_negatives, rng)
    return name_trust(tm, term_ids, weights, heldout.astype(np.int64), negatives)


def describe(terms: list[str], n_fire: int, n_docs: int, status: str) -> str:
    """One-line description: firing rate and top terms."""
    rate = f"Fires on {100.0 * n_fire / max(n_docs, 1):.2g}% of documents ({n_fire:,})."
    top = f" Top terms: {', '.join(terms)}." if terms else " No distinctive terms."
    caveat = " Dense: fires too widely for its name to be specific." if status == "dense" else ""
    return rate + top + caveat


def name_features(
    texts: list[str], inv: InvertedLists, stats: FeatureStats, cfg: NamingConfig, terms: TermMatrix | None = None
) -> FeatureNames:
    """Name every feature of `inv` from `texts` (title + ". " + abstract, row i = document i).
    `terms` may pass a prebuilt `build_term_matrix(texts, cfg.min_df)` to skip rebuilding it."""
    if terms is not None and terms.n_docs != len(texts):
        raise InvalidArgument(f"term matrix has {terms.n_docs} documents but {len(texts)} texts were given")
    if len(inv.doc_ids) and int(inv.doc_ids.max()) >= len(texts):
        raise InvalidArgument(f"inverted lists name document {int(inv.doc_ids.max())} but only {len(texts)} texts")
    start = time.perf_counter()
    tm = terms if terms is not None else build_term_matrix(texts, cfg.min_df)
    built = time.perf_counter()
    counts = inv.counts()
    status = feature_status(counts, stats.density, cfg.dense_threshold)
    rng = np.random.default_rng(cfg.seed)
    n = inv.n_features
    names: list[str] = []
    descriptions: list[str] = []
    top_terms: list[list[str]] = []
    trust = np.zeros(n, dtype=np.float32)
    for f in range(n):
        if status[f] == "dead":
            names.append(f"dead feature {f}")
            descriptions.append("Never fires on this corpus.")
            top_terms.append([])
            continue
        docs, _ = inv.postings(f)
        limit = 3 * max(cfg.description_terms, _NAME_WINDOW)
        ranked, scores = distinctive_terms(tm, docs[: trust_split(len(docs), cfg)], limit)
        name, used = make_name(tm, ranked, scores, f, cfg.max_name_terms, cfg.name_min_ratio)
        score_of = dict(zip(ranked.tolist(), scores.tolist()))
        listed, _ = select_phrases(
            tm, ranked[: cfg.description_terms], cfg.description_terms, 10**6, scores[: cfg.description_terms]
        )
        names.append(name)
        top_terms.append(listed)
        descriptions.append(describe(listed, int(counts[f]), tm.n_docs, status[f]))
        trust[f] = feature_trust(tm, inv, f, used, np.array([score_of[t] for t in used]), cfg, rng)
    log.info(
        "named %d features (%d dead, %d dense): term matrix %.1fs (%d terms), names+trust %.1fs",
        n,
        status.count("dead"),
        status.count("dense"),
        built - start,
        tm.n_terms,
        time.perf_counter() - built,
    )
    return FeatureNames(names=names, descriptions=descriptions, terms=top_terms, trust=trust, status=status)
