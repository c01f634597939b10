"""Feature families (a broad parent feature and narrower children), nearest features by decoder direction, and
the features each one most often fires with.

Families follow O'Neill et al. 2024: link weight w_ij = C_ij / min(c_i, c_j), where C_ij counts documents on which
both features fire and c_i those on which i fires, so w_ij is the share of the sparser feature's documents on
which the denser one also fires. Links that chance explains (lift C_ij n_docs / (c_i c_j) < `min_lift`) are
dropped, then each feature keeps its `graph_neighbors` strongest links; a maximum spanning
forest of that graph is taken (scipy.sparse.csgraph), links weaker than `min_link` are cut, and each link points
from the denser to the sparser feature. A feature's parent is its strongest denser neighbour in the forest, and
every feature with at least `min_children` children heads a family of itself plus those children. When a child
fires on nearly the same documents as its parent (Jaccard >= `merge_jaccard`) it duplicates the parent, so its own
children join the parent's family instead of forming a near-duplicate family.

Dead features and dense ones (they co-fire with everything and would parent every family) are left out of the
graph: they belong to no family. `method="decoder"` builds the same forest from decoder cosine similarity instead
of co-occurrence (kept for comparison; see bench/names.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import minimum_spanning_tree

from indexer.codes import FeatureStats, SparseCodes, firing_matrix
from indexer.embed import unit_rows
from indexer.errors import InvalidArgument
from indexer.names import DENSE_SHARE, FeatureNames

log = logging.getLogger(__name__)

METHODS = ("cooccurrence", "decoder")


@dataclass
class FamilyConfig:
    """How families, decoder neighbours and co-firing features are found."""

    neighbors: int = 10
    """m: nearest features by decoder cosine, and most co-firing features, kept per feature."""
    graph_neighbors: int = 10
    """Strongest links each feature keeps before the spanning forest (sparsifies the graph)."""
    min_cooccur: int = 3
    """Fewest shared documents for a co-occurrence link; rarer coincidences are noise."""
    min_link: float = 0.3
    """Weakest link weight (share of the sparser feature's documents) that still makes a parent-child pair."""
    min_lift: float = 2.0
    """Fewest times a link must raise the odds of co-firing over chance, C_ij * n_docs / (c_i * c_j): without it a
    broad feature overlaps every small one by chance often enough to adopt it."""
    min_children: int = 2
    """Fewest children for a feature to head a family."""
    merge_jaccard: float = 0.6
    """A child whose firing documents overlap its parent's this much (Jaccard) is a near duplicate: its children
    join the parent's family."""
    dense_threshold: float = DENSE_SHARE
    """Features firing on more than this share of documents are left out of families."""
    method: str = "cooccurrence"
    """Link weight: "cooccurrence" (normalised co-occurrence) or "decoder" (decoder cosine, clipped at 0)."""
    chunk: int = 1024
    """Rows of the decoder similarity computed at once (bounds memory to chunk x n_features float32)."""

    def __post_init__(self) -> None:
        if self.neighbors < 1 or self.graph_neighbors < 1:
            raise InvalidArgument(f"neighbors and graph_neighbors must be >= 1, got {self.neighbors}, {self.graph_neighbors}")
        if self.min_cooccur < 1:
            raise InvalidArgument(f"min_cooccur must be >= 1, got {self.min_cooccur}")
        if not 0.0 <= self.min_link <= 1.0 or not 0.0 < self.merge_jaccard <= 1.0:
            raise InvalidArgument(f"min_link must be in [0, 1] and merge_jaccard in (0, 1], got {self.min_link}, {self.merge_jaccard}")
        if self.min_lift < 0:
            raise InvalidArgument(f"min_lift must be >= 0, got {self.min_lift}")
        if self.min_children < 1:
            raise InvalidArgument(f"min_children must be >= 1, got {self.min_children}")
        if not 0.0 < self.dense_threshold <= 1.0:
            raise InvalidArgument(f"dense_threshold must be in (0, 1], got {self.dense_threshold}")
        if self.method not in METHODS:
            raise InvalidArgument(f"method must be one of {METHODS}, got {self.method!r}")
        if self.chunk < 1:
            raise InvalidArgument(f"chunk must be >= 1, got {self.chunk}")


@dataclass
class Families:
    """Feature families plus per-feature neighbour lists."""

    parent: np.ndarray
    """(n_families,) int32 feature id of each family's parent; families are sorted largest first."""
    children: list[np.ndarray]
    """(n_families,) each int32 feature ids, strongest link first."""
    names: list[str]
    """(n_families,) family names (the parent feature's name)."""
    feature_family: np.ndarray
    """(n_features,) int32 family where the feature is a child, else the family it heads, else -1."""
    neighbors: np.ndarray
    """(n_features, m) int32 nearest features by decoder cosine, most similar first (-1 padding)."""
    neighbor_sims: np.ndarray
    """(n_features, m) float32 decoder cosine of each neighbour (0 for padding)."""
    cooccurring: np.ndarray
    """(n_features, m) int32 features firing most often on the same documents, most first (-1 padding)."""
    cooccur_counts: np.ndarray
    """(n_features, m) int32 shared documents of each (0 for padding)."""

    def sizes(self) -> np.ndarray:
        """(n_families,) int64 size of each family: 1 + number of children."""
        return np.array([1 + len(c) for c in self.children], dtype=np.int64)


def cooccurrence(codes: SparseCodes) -> sp.csr_matrix:
    """(n_features, n_features) int32 sparse symmetric counts of documents where both features fire; the
    diagonal holds each feature's firing count. Built as A^T A with A the sparse docs x features firing matrix."""
    a = firing_matrix(codes, np.int32)
    c = (a.T.tocsr() @ a).tocsr()
    c.sort_indices()
    return c


def top_per_row(mat: sp.csr_matrix, m: int, exclude_diagonal: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Largest m entries of each row of a sparse matrix (ties: lower column first): columns (n, m) int32 with
    -1 padding and values (n, m) in the matrix dtype with 0 padding."""
    n = mat.shape[0]
    cols = np.full((n, m), -1, dtype=np.int32)
    vals = np.zeros((n, m), dtype=mat.dtype)
    for i in range(n):
        lo, hi = mat.indptr[i], mat.indptr[i + 1]
        c, v = mat.indices[lo:hi], mat.data[lo:hi]
        if exclude_diagonal:
            keep = c != i
            c, v = c[keep], v[keep]
        if len(v) > m:
            # Partition first (rows can hold thousands of entries), keeping every tie of the m-th value.
            kth = np.partition(v, len(v) - m)[len(v) - m]
            c, v = c[v >= kth], v[v >= kth]
        order = np.lexsort((c, -v))[:m]
        cols[i, : len(order)] = c[order]
        vals[i, : len(order)] = v[order]
    return cols, vals


def decoder_neighbors(w_dec: np.ndarray, m: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Nearest features by cosine of decoder rows, itself excluded: ids (n, m) int32 (-1 padding) and cosines
    (n, m) float32, most similar first. w_dec is (n, d) float; computed in row chunks, never n x n at once."""
    w = unit_rows(np.asarray(w_dec, dtype=np.float32))
    n = len(w)
    k = min(m, n - 1)
    ids = np.full((n, m), -1, dtype=np.int32)
    sims = np.zeros((n, m), dtype=np.float32)
    if k <= 0:
        return ids, sims
    for lo in range(0, n, chunk):
        s = w[lo : lo + chunk] @ w.T
        rows = np.arange(len(s))
        s[rows, lo + rows] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)
        ids[lo : lo + len(s), :k] = np.take_along_axis(part, order, axis=1)
        sims[lo : lo + len(s), :k] = np.take_along_axis(ps, order, axis=1)
    return ids, sims


def link_graph(
    cooc: sp.csr_matrix, n_docs: int, eligible: np.ndarray, cfg: FamilyConfig, w_dec: np.ndarray | None = None
) -> sp.csr_matrix:
    """(n, n) float64 symmetric sparse link weights in (0, 1] between eligible features that co-fire at least
    `min_cooccur` times and `min_lift` times more often than chance, each feature keeping its `graph_neighbors`
    strongest links (union over both ends)."""
    counts = cooc.diagonal().astype(np.float64)
    coo = cooc.tocoo()
    r, c, v = coo.row, coo.col, coo.data
    keep = (r != c) & eligible[r] & eligible[c] & (v >= cfg.min_cooccur)
    r, c, v = r[keep], c[keep], v[keep]
    lift = v * float(n_docs) / (counts[r] * counts[c])
    r, c, v = r[lift >= cfg.min_lift], c[lift >= cfg.min_lift], v[lift >= cfg.min_lift]
    if cfg.method == "cooccurrence":
        w = v / np.minimum(counts[r], counts[c])
    else:
        # Cosine only between features that ever co-fire, so the graph stays as sparse as the co-occurrence one.
        wn = unit_rows(np.asarray(w_dec, dtype=np.float32))
        w = np.empty(len(r), dtype=np.float64)
        # In slices: gathering both ends of ~10M pairs at once would take (pairs x d) floats, ~15 GB.
        for lo in range(0, len(r), 65536):
            sl = slice(lo, lo + 65536)
            w[sl] = np.einsum("ij,ij->i", wn[r[sl]], wn[c[sl]])
        keep = w > 0
        r, c, w = r[keep], c[keep], w[keep]
    n = cooc.shape[0]
    g = sp.csr_matrix((w, (r, c)), shape=(n, n))
    cols, vals = top_per_row(g, cfg.graph_neighbors)
    rr = np.repeat(np.arange(n), cols.shape[1])
    sel = cols.ravel() >= 0
    rr, cc, vv = rr[sel], cols.ravel()[sel], vals.ravel()[sel]
    top = sp.csr_matrix((vv, (rr, cc)), shape=(n, n))
    return top.maximum(top.T).tocsr()


def spanning_forest(graph: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i, j, weight) of a maximum spanning forest of a symmetric sparse weight graph in (0, 1]."""
    cost = graph.copy()
    # All spanning forests of a graph have the same number of edges, so minimising (2 - w) maximises total w;
    # the shift keeps every cost strictly positive, since csgraph reads a stored 0 as "no edge".
    cost.data = 2.0 - cost.data
    tree = minimum_spanning_tree(cost).tocoo()
    return tree.row.astype(np.int64), tree.col.astype(np.int64), 2.0 - tree.data


def parents_from_forest(
    i: np.ndarray, j: np.ndarray, w: np.ndarray, counts: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's parent (-1 for none) and link weight: edges point from the denser end (ties: lower id)
    to the sparser, and a feature with several denser neighbours keeps the strongest."""
    denser_i = (counts[i] > counts[j]) | ((counts[i] == counts[j]) & (i < j))
    par = np.where(denser_i, i, j)
    child = np.where(denser_i, j, i)
    parent = np.full(n, -1, dtype=np.int64)
    weight = np.zeros(n, dtype=np.float64)
    order = np.lexsort((-w, child))
    first = np.unique(child[order], return_index=True)[1]
    best = order[first]
    parent[child[best]] = par[best]
    weight[child[best]] = w[best]
    return parent, weight


def group_families(
    parent: np.ndarray, weight: np.ndarray, cooc: sp.csr_matrix, cfg: FamilyConfig
) -> tuple[list[int], list[np.ndarray]]:
    """Families as (parent, children strongest first), near duplicates merged, before size filtering."""
    counts = cooc.diagonal().astype(np.float64)
    n = len(parent)
    head = np.arange(n)
    # Walk parents before children (denser first) so a chain of near duplicates folds into its top feature.
    for f in np.argsort(-counts, kind="stable"):
        p = parent[f]
        if p < 0:
            continue
        shared = float(cooc[p, f])
        jaccard = shared / (counts[p] + counts[f] - shared)
        if jaccard >= cfg.merge_jaccard:
            head[f] = head[p]
    members: dict[int, list[int]] = {}
    for f in np.flatnonzero(parent >= 0):
        members.setdefault(int(head[parent[f]]), []).append(int(f))
    heads, kids = [], []
    for h, ch in members.items():
        ch_arr = np.array(ch, dtype=np.int32)
        heads.append(h)
        kids.append(ch_arr[np.lexsort((ch_arr, -weight[ch_arr]))])
    return heads, kids


def build_families(
    codes: SparseCodes, stats: FeatureStats, w_dec: np.ndarray, names: FeatureNames, cfg: FamilyConfig
) -> Families:
    """Families, decoder neighbours and co-firing features of all `codes.n_features` features."""
    n = codes.n_features
    if w_dec.shape[0] != n:
        raise InvalidArgument(f"decoder has {w_dec.shape[0]} rows but the codes have {n} features")
    if len(names.names) != n or len(stats.density) != n:
        raise InvalidArgument(f"names ({len(names.names)}) and stats ({len(stats.density)}) must cover {n} features")
    start = time.perf_counter()
    cooc = cooccurrence(codes)
    t_cooc = time.perf_counter()
    co_ids, co_counts = top_per_row(cooc, cfg.neighbors)
    nb_ids, nb_sims = decoder_neighbors(w_dec, cfg.neighbors, cfg.chunk)
    t_nb = time.perf_counter()
    counts = cooc.diagonal().astype(np.int64)
    eligible = (counts > 0) & (stats.density <= cfg.dense_threshold)
    graph = link_graph(cooc, codes.n_docs, eligible, cfg, w_dec)
    i, j, w = spanning_forest(graph)
    strong = w >= cfg.min_link
    parent, weight = parents_from_forest(i[strong], j[strong], w[strong], counts, n)
    heads, kids = group_families(parent, weight, cooc, cfg)
    big = [(h, k) for h, k in zip(heads, kids) if len(k) >= cfg.min_children]
    big.sort(key=lambda hk: (-len(hk[1]), -counts[hk[0]], hk[0]))
    feature_family = np.full(n, -1, dtype=np.int32)
    for fam, (h, _) in enumerate(big):
        feature_family[h] = fam
    # Membership as a child wins over heading a family, as the API promises.
    for fam, (_, k) in enumerate(big):
        feature_family[k] = fam
    log.info("families: %d (of %d candidate parents), co-occurrence %.1fs (nnz %d), neighbours %.1fs, forest %.1fs",
             len(big), len(heads), t_cooc - start, cooc.nnz, t_nb - t_cooc, time.perf_counter() - t_nb)
    return Families(
        parent=np.array([h for h, _ in big], dtype=np.int32),
        children=[k for _, k in big],
        names=[names.names[h] for h, _ in big],
        feature_family=feature_family,
        neighbors=nb_ids,
        neighbor_sims=nb_sims,
        cooccurring=co_ids,
        cooccur_counts=co_counts.astype(np.int32),
    )
