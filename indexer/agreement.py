"""Which words stand for which features: the word-feature agreement table over a corpus (precision, recall and F1
of every term against where every feature fires), how well a word stands for a feature (`word_scores`), and which
term each feature is the best handle for (`first_hit_terms`, `best_terms`, `trusted_terms`). Pure numpy and scipy
over arrays; indexer/concepts.py builds an index's table and probes with them, indexer/wordsearch.py reads it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def term_feature_table(
    term_docs: sp.csr_matrix, df: np.ndarray, firing: sp.csr_matrix, per_term: int, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top features by F1 per term. term_docs (n_terms, n_docs) binary CSR, df (n_terms,), firing (n_docs,
    n_features) binary CSR -> features (n_terms, m) int32 (-1 pads), precision, recall (n_terms, m) float32."""
    n_terms, n_features = term_docs.shape[0], firing.shape[1]
    m = min(per_term, n_features)
    counts = np.asarray(firing.sum(axis=0)).ravel().astype(np.float32)
    feats = np.full((n_terms, m), -1, dtype=np.int32)
    prec = np.zeros((n_terms, m), dtype=np.float32)
    rec = np.zeros((n_terms, m), dtype=np.float32)
    for lo in range(0, n_terms, chunk):
        both = (term_docs[lo : lo + chunk] @ firing).toarray()
        dft = df[lo : lo + chunk, None].astype(np.float32)
        f1 = 2 * both / (dft + counts[None, :])
        top = np.argpartition(-f1, m - 1, axis=1)[:, :m] if m < n_features else np.tile(np.arange(m), (len(f1), 1))
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(f1, top, 1), axis=1, kind="stable"), 1)
        hit = np.take_along_axis(both, top, 1)
        feats[lo : lo + chunk] = np.where(hit > 0, top, -1)
        prec[lo : lo + chunk] = hit / np.maximum(counts[top], 1.0)
        rec[lo : lo + chunk] = hit / np.maximum(dft, 1.0)
    return feats, prec, rec


MIN_SHARED = 3
"""A feature stands for a word only if it fires on at least this many of the word's documents: one or two shared
documents of a rare word give a high precision by chance."""


def f1_score(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """F1 of each (term, feature) pair, 0 where precision and recall are both 0; same shape and dtype."""
    return 2 * precision * recall / np.maximum(precision + recall, 1e-12)


def best_f1(features: np.ndarray, f1: np.ndarray, n_features: int) -> np.ndarray:
    """(n_features,) float32 each feature's highest F1 over a (term, feature) table whose `features` (n_terms, m)
    int32 has -1 padding (0 for a feature in no term's list)."""
    out = np.zeros(n_features, dtype=np.float32)
    valid = features >= 0
    np.maximum.at(out, features[valid], f1[valid])
    return out


BETA = 0.5
"""The F-score's beta in `word_scores`: below 1 it weighs precision more, since a feature that fires on a large,
mixed set of documents is a poor handle for one word. One value for the build (concept terms) and the feature
search, so that a feature's concept term is the word whose search finds it first."""


def word_scores(precision: np.ndarray, recall: np.ndarray, best_f1: np.ndarray, df: np.ndarray) -> np.ndarray:
    """How well a word stands for each feature, in [0, 1]: F_BETA(P, R) x own, own = F1 / the feature's best F1
    (1 when this is its best word), and 0 when the feature fires on fewer than MIN_SHARED of the word's df
    documents. Arrays of one shape (df broadcastable) in, same shape out."""
    b2 = BETA * BETA
    fb = (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-12)
    f1 = f1_score(precision, recall)
    enough = np.rint(recall * df) >= MIN_SHARED
    return (fb * np.minimum(f1 / np.maximum(best_f1, 1e-12), 1.0) * enough).astype(np.float32)


def undominated(
    scores: np.ndarray, precision: np.ndarray, recall: np.ndarray, keep: np.ndarray | None = None
) -> np.ndarray:
    """`word_scores` (m,) of a term's m features with each capped just below those of the features that beat it on
    both precision and recall (at least as high on both, higher on one): such a feature is the better handle for the
    word whatever `own` says. `own` favours a feature that no other word stands for well, and for "tabpfn" that
    ranked an exoplanet feature (recall 0.07, precision 0.04) above the tabular-data one (0.91, 0.05). Where `keep`
    (m,) bool is true the score stays as it is. (m,) float32 out."""
    out = np.asarray(scores, dtype=np.float64).copy()
    kept = np.zeros(len(out), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    # A feature's betters have a higher precision + recall, so in that order each is final before it caps another.
    for i in np.argsort(-(precision + recall), kind="stable"):
        if kept[i]:
            continue
        at_least = (precision >= precision[i]) & (recall >= recall[i])
        beats = at_least & ((precision > precision[i]) | (recall > recall[i]))
        if beats.any():
            out[i] = min(out[i], float(out[beats].min()) * (1.0 - 1e-6))
    return out.astype(np.float32)


def profile_overlap(
    features_a: np.ndarray, recall_a: np.ndarray, features_b: np.ndarray, recall_b: np.ndarray
) -> float:
    """How alike two terms are as the features read them: the weighted Jaccard index, sum of min over sum of max,
    of their recall over the features either lists ((m,) int ids, -1 padding, and (m,) recall each; a feature one
    term does not list counts 0 for it). Near 1 for another form or a part of one topic ("diffusion models" and
    "diffusion": 0.75), near 0 for words that only a polysemantic feature ties ("ligo" and "street": 0.02)."""
    a = {int(f): float(r) for f, r in zip(features_a, recall_a) if f >= 0}
    b = {int(f): float(r) for f, r in zip(features_b, recall_b) if f >= 0}
    keys = a.keys() | b.keys()
    most = sum(max(a.get(f, 0.0), b.get(f, 0.0)) for f in keys)
    return sum(min(a.get(f, 0.0), b.get(f, 0.0)) for f in keys) / most if most > 0 else 0.0


def first_hit_terms(features: np.ndarray, scores: np.ndarray, n_features: int) -> np.ndarray:
    """(n_features,) int32 row of the term each feature is the best handle for (the term's highest `scores`
    entry, and the highest among such terms), -1 when it is no term's first hit."""
    valid = features >= 0
    masked = np.where(valid, scores, -1.0)
    best = masked.argmax(axis=1)
    rows = np.flatnonzero(masked[np.arange(len(best)), best] > 0)
    feat = features[rows, best[rows]]
    score = masked[rows, best[rows]]
    return _best_row_per_feature(feat, rows, score, n_features)


def _best_row_per_feature(feat: np.ndarray, rows: np.ndarray, score: np.ndarray, n_features: int) -> np.ndarray:
    """(n_features,) int32: for each feature, the row with its highest score (ties: lowest row), else -1."""
    out = np.full(n_features, -1, dtype=np.int32)
    order = np.lexsort((rows, -score, feat))
    feat, rows = feat[order], rows[order]
    first = np.ones(len(feat), dtype=bool)
    first[1:] = feat[1:] != feat[:-1]
    out[feat[first]] = rows[first]
    return out


def best_terms(features: np.ndarray, f1: np.ndarray, n_features: int, min_f1: float) -> np.ndarray:
    """(n_features,) int32 row of the term where each feature has its highest F1 (>= min_f1), else -1."""
    rows, cols = np.nonzero(features >= 0)
    feat, score = features[rows, cols], f1[rows, cols]
    ok = score >= max(min_f1, 1e-12)
    rows, feat, score = rows[ok], feat[ok], score[ok]
    return _best_row_per_feature(feat, rows, score, n_features)


def trusted_terms(
    probe_term: np.ndarray, features: np.ndarray, precision: np.ndarray, recall: np.ndarray, scores: np.ndarray,
    df: np.ndarray, n_docs: int, min_overlap: float, min_lift: float, word_min: float,
) -> np.ndarray:
    """probe_term (n_features,) int32 with -1 where the feature and its chosen term are too loosely tied for the
    term to stand for it, read as an association rule over the (n_terms, m) `term_feature_table` and `word_scores`
    arrays: support (the feature fires on at least MIN_SHARED of the term's df documents), confidence (precision
    or recall at least `min_overlap`) and lift (precision over the term's corpus share at least `min_lift`,
    unless the word score reaches `word_min`; `ConceptConfig` has the defaults). A feature that is no term's
    clear first hit still takes its best one, and on the shared corpus a third of them were chance: "cake" (1
    shared document of 10) for a feature of vague adjectives, or a common word such as "despite" or "parameters"
    (lift 1.2 / 2.2); a boost then rewarded every abstract with that word. Such a feature reads its own firing
    documents instead."""
    out = probe_term.copy()
    has = np.flatnonzero(probe_term >= 0)
    t = probe_term[has]
    col = np.argmax(features[t] == has[:, None], axis=1)
    found = features[t, col] == has
    p, r, s = precision[t, col], recall[t, col], scores[t, col]
    lift = p * n_docs / np.maximum(df[t], 1)
    ok = (
        found & (np.rint(r * df[t]) >= MIN_SHARED) & (np.maximum(p, r) >= min_overlap)
        & ((lift >= min_lift) | (s >= word_min))
    )
    out[has[~ok]] = -1
    return out
