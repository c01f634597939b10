"""Feature names, trust and status (indexer/names.py) and the term matrix they are made from (indexer/terms.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.codes import FeatureStats, InvertedLists, SparseCodes, feature_stats, invert
from indexer.errors import InvalidArgument
from indexer.names import FeatureNames, NamingConfig, auroc_counts, name_features, sample_negatives
from indexer.terms import STOP_WORDS

PLANTED = ["quasar jets", "protein folding", "graph kernels", "glacier melt"]
N_DOCS = 600


def filler_words(rng: np.random.Generator, n: int) -> list[str]:
    """Pseudo-words that are not stop words and share nothing with the planted pairs."""
    letters = list("bcdfghklmnprstvz")
    words = {"".join(rng.choice(letters, 3)) + "o" + "".join(rng.choice(letters, 2)) for _ in range(n * 2)}
    return sorted(words)[:n]


def make_corpus(seed: int = 0) -> tuple[list[str], SparseCodes]:
    """Texts with planted word pairs and LaTeX noise, and codes where feature f < 4 fires exactly on the
    documents holding PLANTED[f]; feature 4 fires on random documents, 5 never, 6 on 40% of documents."""
    rng = np.random.default_rng(seed)
    filler = filler_words(rng, 300)
    has = rng.random((N_DOCS, len(PLANTED))) < 0.1
    random_feat = rng.random(N_DOCS) < 0.1
    dense_feat = rng.random(N_DOCS) < 0.4
    texts = []
    for d in range(N_DOCS):
        words = list(rng.choice(filler, 30))
        for p in np.flatnonzero(has[d]):
            words.insert(int(rng.integers(0, len(words))), PLANTED[p])
        body = " ".join(words)
        texts.append(f"The study of {words[0]}. We show that $n_e\\simeq100$ and \\mathcal{{O}}(n) of the {body}.")
    k = 6
    idx = np.zeros((N_DOCS, k), dtype=np.int32)
    val = np.zeros((N_DOCS, k), dtype=np.float32)
    for d in range(N_DOCS):
        fired = list(np.flatnonzero(has[d])) + ([4] if random_feat[d] else []) + ([6] if dense_feat[d] else [])
        acts = np.sort(rng.uniform(0.1, 1.0, size=len(fired)))[::-1]
        idx[d, : len(fired)] = fired
        val[d, : len(fired)] = acts
        # Unused slots point at distinct other features with activation 0, as a top-k code would.
        idx[d, len(fired) :] = [f for f in range(7, 20) if f not in fired][: k - len(fired)]
    return texts, SparseCodes(indices=idx, values=val, n_features=20)


@pytest.fixture(scope="module")
def planted() -> tuple[list[str], InvertedLists, FeatureStats, FeatureNames]:
    texts, codes = make_corpus()
    inv = invert(codes)
    stats = feature_stats(inv, codes.n_docs)
    cfg = NamingConfig(top_docs=20, trust_negatives=300)
    return texts, inv, stats, name_features(texts, inv, stats, cfg)


def test_planted_pairs_name_their_features_with_high_trust(planted) -> None:
    _, _, _, names = planted
    for f, pair in enumerate(PLANTED):
        assert pair in names.names[f], (f, names.names[f])
        assert names.terms[f][0] == pair
        assert names.trust[f] >= 0.9, (f, names.names[f], names.trust[f])


def test_random_feature_gets_chance_trust(planted) -> None:
    _, _, _, names = planted
    assert names.status[4] == "live"
    assert names.trust[4] < 0.7, (names.names[4], names.trust[4])


def test_status_dead_dense_live(planted) -> None:
    _, inv, _, names = planted
    assert names.status[5] == "dead" and names.names[5] == "dead feature 5" and names.trust[5] == 0.0
    assert names.terms[5] == []
    assert names.status[6] == "dense"
    assert names.status[:5] == ["live"] * 5
    # Features 7..19 only sit in unused slots, so they never fire.
    assert all(s == "dead" for s in names.status[7:])
    assert all(inv.counts()[f] == 0 for f in range(7, 20))


def test_names_have_2_to_5_words_without_latex_or_stop_words(planted) -> None:
    _, _, _, names = planted
    assert len(names.names) == len(names.descriptions) == len(names.terms) == len(names.status) == 20
    assert names.trust.dtype == np.float32 and names.trust.shape == (20,)
    assert ((names.trust >= 0) & (names.trust <= 1)).all()
    for name in names.names:
        words = name.replace(",", " ").split()
        assert 2 <= len(words) <= 5, name
        for bad in ("$", "\\", "simeq", "mathcal", "{", "}"):
            assert bad not in name, name
    for f in range(5):
        assert not set(names.names[f].replace(",", " ").split()) & STOP_WORDS, names.names[f]
        assert all(bad not in t for t in names.terms[f] for bad in ("simeq", "mathcal", "100"))


def test_descriptions_list_top_terms(planted) -> None:
    _, _, _, names = planted
    assert PLANTED[0] in names.descriptions[0]
    assert names.descriptions[5] == "Never fires on this corpus."
    assert "Dense" in names.descriptions[6]


def test_config_validation() -> None:
    for bad in (dict(top_docs=0), dict(max_name_terms=0), dict(max_name_terms=6), dict(dense_threshold=0.0),
                dict(trust_negatives=5), dict(min_df=0), dict(description_terms=0), dict(min_heldout=0)):
        with pytest.raises(InvalidArgument):
            NamingConfig(**bad)


def test_name_features_rejects_mismatched_texts(planted) -> None:
    texts, inv, stats, _ = planted
    with pytest.raises(InvalidArgument):
        name_features(texts[:10], inv, stats, NamingConfig())


def test_auroc_counts_extremes() -> None:
    assert auroc_counts(np.array([2, 3]), np.array([0, 1])) == 1.0
    assert auroc_counts(np.array([0, 0]), np.array([1, 1])) == 0.0
    assert auroc_counts(np.array([1, 1]), np.array([1, 1])) == 0.5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.lists(st.integers(0, 4), min_size=1, max_size=30))
def test_auroc_counts_matches_pairwise(pos: list[int], neg: list[int]) -> None:
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert auroc_counts(np.array(pos), np.array(neg)) == pytest.approx(np.mean(pairs))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**31 - 1), st.integers(10, 100))
def test_sample_negatives_avoid_firing_docs(n_docs: int, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    firing = np.sort(rng.choice(n_docs, size=int(rng.integers(0, n_docs + 1)), replace=False))
    neg = sample_negatives(firing, n_docs, n, rng)
    assert len(np.unique(neg)) == len(neg) <= n
    assert not np.isin(neg, firing).any()
    assert ((neg >= 0) & (neg < n_docs)).all()
    assert len(neg) == min(n, n_docs - len(firing))


def test_trust_positives_choose_the_next_strongest_documents() -> None:
    texts, codes = make_corpus(seed=6)
    rng = np.random.default_rng(6)
    planted = np.array(["quasar jets" in t for t in texts])
    noise = (~planted) & (rng.random(len(texts)) < 0.4)
    # Feature 0 fires strongly on its planted documents and weakly on many random ones.
    codes.values[planted, 0] = rng.uniform(0.9, 1.0, planted.sum())
    codes.values[noise, 0] = rng.uniform(0.01, 0.05, noise.sum())
    codes.indices[noise, 0] = 0
    inv = invert(codes)
    stats = feature_stats(inv, codes.n_docs)
    next_only = name_features(texts, inv, stats, NamingConfig(top_docs=20, trust_positives=20, trust_negatives=300))
    everything = name_features(texts, inv, stats, NamingConfig(top_docs=20, trust_positives=0, trust_negatives=300))
    assert next_only.names[0] == everything.names[0] == "quasar jets"
    assert next_only.trust[0] >= 0.9
    assert everything.trust[0] < next_only.trust[0] - 0.2
