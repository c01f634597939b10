"""Feature families, decoder neighbours and co-firing features (indexer/families.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.codes import SparseCodes, feature_stats, invert
from indexer.errors import InvalidArgument
from indexer.families import (
    FamilyConfig,
    Families,
    build_families,
    cooccurrence,
    decoder_neighbors,
    top_per_row,
)
from indexer.names import FeatureNames
from tests.conftest import dense_rows

N_DOCS = 2000


def codes_from_sets(firing: list[np.ndarray], n_docs: int, seed: int = 0) -> SparseCodes:
    """Top-k codes where feature f fires (random activation) exactly on the documents in firing[f]."""
    rng = np.random.default_rng(seed)
    per_doc: list[list[int]] = [[] for _ in range(n_docs)]
    for f, docs in enumerate(firing):
        for d in docs:
            per_doc[int(d)].append(f)
    k = max(1, max(len(p) for p in per_doc))
    idx = np.zeros((n_docs, k), dtype=np.int32)
    val = np.zeros((n_docs, k), dtype=np.float32)
    for d, feats in enumerate(per_doc):
        idx[d, : len(feats)] = feats
        val[d, : len(feats)] = np.sort(rng.uniform(0.1, 1.0, len(feats)))[::-1]
        # Unused slots name features not already in the row, with activation 0.
        idx[d, len(feats) :] = [f for f in range(len(firing)) if f not in feats][: k - len(feats)]
    return SparseCodes(indices=idx, values=val, n_features=len(firing))


def fake_names(n: int) -> FeatureNames:
    return FeatureNames(
        names=[f"name {f}" for f in range(n)],
        descriptions=[""] * n,
        terms=[[] for _ in range(n)],
        trust=np.zeros(n, dtype=np.float32),
        status=["live"] * n,
    )


def planted_hierarchy(seed: int = 0) -> tuple[SparseCodes, list[np.ndarray]]:
    """Feature 0 fires on the union of features 1 and 2 (disjoint); feature 3 on the union of 4, 5, 6;
    7..12 fire at random on 5% of documents, 13 never, 14 on 60%."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(N_DOCS)
    n1, n2 = perm[:100], perm[100:200]
    n4, n5, n6 = perm[200:300], perm[300:400], perm[400:500]
    firing = [np.concatenate([n1, n2]), n1, n2, np.concatenate([n4, n5, n6]), n4, n5, n6]
    firing += [rng.choice(N_DOCS, 100, replace=False) for _ in range(6)]
    firing += [np.empty(0, dtype=np.int64), rng.choice(N_DOCS, 1200, replace=False)]
    return codes_from_sets(firing, N_DOCS, seed), firing


def build(codes: SparseCodes, seed: int = 0, **cfg: object) -> Families:
    w_dec = np.random.default_rng(seed).normal(size=(codes.n_features, 8)).astype(np.float32)
    stats = feature_stats(invert(codes), codes.n_docs)
    return build_families(codes, stats, w_dec, fake_names(codes.n_features), FamilyConfig(**cfg))


def check_consistent(fam: Families, n: int) -> None:
    """Family lists and `feature_family` agree; sizes are sorted largest first."""
    assert len(fam.parent) == len(fam.children) == len(fam.names)
    sizes = fam.sizes()
    assert (np.diff(sizes) <= 0).all()
    child_of = {}
    for i, (p, kids) in enumerate(zip(fam.parent, fam.children)):
        assert kids.dtype == np.int32 and len(kids) >= 1
        assert p not in kids and len(set(kids.tolist())) == len(kids)
        for c in kids:
            assert c not in child_of, f"feature {c} is a child of two families"
            child_of[int(c)] = i
    heads = {int(p): i for i, p in enumerate(fam.parent)}
    assert len(heads) == len(fam.parent), "a feature heads two families"
    for f in range(n):
        want = child_of.get(f, heads.get(f, -1))
        assert fam.feature_family[f] == want, f
    assert fam.feature_family.dtype == np.int32 and fam.feature_family.shape == (n,)


def test_broad_feature_parents_its_narrow_features() -> None:
    codes, _ = planted_hierarchy()
    fam = build(codes)
    check_consistent(fam, codes.n_features)
    by_parent = {int(p): set(k.tolist()) for p, k in zip(fam.parent, fam.children)}
    assert by_parent[0] == {1, 2}
    assert by_parent[3] == {4, 5, 6}
    assert fam.names[list(fam.parent).index(3)] == "name 3"
    # Largest first: the three-child family comes before the two-child one.
    assert list(fam.parent[:2]) == [3, 0]
    for f in (13, 14):
        assert fam.feature_family[f] == -1


def test_near_duplicate_parent_is_merged() -> None:
    rng = np.random.default_rng(1)
    perm = rng.permutation(N_DOCS)
    base = perm[:120]
    firing = [base, base[5:], perm[:30], perm[30:60], perm[60:90], perm[200:230], perm[230:260]]
    firing.append(np.concatenate([perm[200:230], perm[230:260]]))
    codes = codes_from_sets(firing, N_DOCS)
    fam = build(codes, min_children=2)
    check_consistent(fam, codes.n_features)
    by_parent = {int(p): set(k.tolist()) for p, k in zip(fam.parent, fam.children)}
    assert by_parent[0] == {1, 2, 3, 4}, by_parent
    assert 1 not in by_parent
    assert by_parent[7] == {5, 6}


def test_cooccurrence_matches_brute_force() -> None:
    codes, _ = planted_hierarchy(seed=2)
    fired = (dense_rows(codes, np.arange(codes.n_docs)) > 0).astype(np.int64)
    brute = fired.T @ fired
    assert (cooccurrence(codes).toarray() == brute).all()
    fam = build(codes, neighbors=4)
    for f in range(codes.n_features):
        row = brute[f].copy()
        row[f] = -1
        order = np.lexsort((np.arange(len(row)), -row))
        order = [j for j in order if row[j] > 0][:4]
        want_ids = order + [-1] * (4 - len(order))
        assert fam.cooccurring[f].tolist() == want_ids, f
        assert fam.cooccur_counts[f].tolist() == [int(row[j]) for j in order] + [0] * (4 - len(order))


def test_decoder_neighbors_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(50, 6)).astype(np.float32)
    ids, sims = decoder_neighbors(w, 7, chunk=16)
    wn = w / np.linalg.norm(w, axis=1, keepdims=True)
    cos = wn @ wn.T
    np.fill_diagonal(cos, -np.inf)
    want = np.argsort(-cos, axis=1)[:, :7]
    assert (ids == want).all()
    np.testing.assert_allclose(sims, np.take_along_axis(cos, want, axis=1), rtol=1e-5, atol=1e-6)
    assert not (ids == np.arange(50)[:, None]).any()
    assert (np.diff(sims, axis=1) <= 0).all()


def test_decoder_neighbors_pad_when_few_features() -> None:
    ids, sims = decoder_neighbors(np.eye(3, dtype=np.float32), 5)
    assert ids.shape == (3, 5) and (ids[:, 2:] == -1).all() and (sims[:, 2:] == 0).all()
    assert set(ids[0, :2].tolist()) == {1, 2}


def test_top_per_row_breaks_ties_by_column() -> None:
    import scipy.sparse as sp

    m = sp.csr_matrix(np.array([[5, 2, 2, 2, 0], [0, 0, 0, 0, 0], [1, 3, 0, 3, 9]], dtype=np.int32))
    cols, vals = top_per_row(m, 2)
    assert cols.tolist() == [[1, 2], [-1, -1], [4, 1]]
    assert vals.tolist() == [[2, 2], [0, 0], [9, 3]]


def test_decoder_method_and_validation() -> None:
    codes, _ = planted_hierarchy()
    fam = build(codes, method="decoder", min_link=0.0)
    check_consistent(fam, codes.n_features)
    with pytest.raises(InvalidArgument):
        FamilyConfig(method="louvain")
    with pytest.raises(InvalidArgument):
        FamilyConfig(min_link=1.5)
    with pytest.raises(InvalidArgument):
        FamilyConfig(neighbors=0)
    stats = feature_stats(invert(codes), codes.n_docs)
    with pytest.raises(InvalidArgument):
        build_families(codes, stats, np.zeros((3, 8), np.float32), fake_names(codes.n_features), FamilyConfig())


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 25), st.integers(1, 4))
def test_random_codes_give_consistent_families(seed: int, n_features: int, min_children: int) -> None:
    rng = np.random.default_rng(seed)
    n_docs = 120
    firing = [rng.choice(n_docs, int(rng.integers(0, 60)), replace=False) for _ in range(n_features)]
    codes = codes_from_sets(firing, n_docs, seed)
    fam = build(codes, seed=seed, min_children=min_children, min_cooccur=1, neighbors=3)
    check_consistent(fam, n_features)
    assert all(len(k) >= min_children for k in fam.children)
    counts = np.array([len(f) for f in firing])
    for p, kids in zip(fam.parent, fam.children):
        # Links point from the denser feature to the sparser one, also after near duplicates hand their
        # children up (those were sparser still).
        assert counts[p] > 0 and counts[p] / n_docs <= 0.2 + 1e-9
        assert (counts[kids] <= counts[p]).all()
    assert not (fam.neighbors == np.arange(n_features)[:, None]).any()
