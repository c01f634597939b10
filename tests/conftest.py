"""Shared fixtures: a seed, builders for configs and a tiny synthetic index, and (for end-to-end tests) the
real model and a small index built from real abstracts of data/."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEMO_CORPUS = ROOT / "data" / "demo_abstracts.parquet"
DEMO_EMBEDDINGS = ROOT / "data" / "demo_embeddings.npy"
SHARED = ROOT.parent / "shared" / "data"


def distinct_indices(b: int, n: int, k: int, seed: int):
    """(b, k) int64 torch tensor: each row k distinct latents out of n."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(b)])


def torch_devices() -> list:
    """'cpu', and 'cuda' where torch sees a GPU (skipped elsewhere: CI machines have none)."""
    import torch

    no_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    return ["cpu", pytest.param("cuda", marks=no_gpu)]


@pytest.fixture
def seed() -> int:
    return 0


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_build_cfg(tmp: Path, **overrides):
    """BuildConfig for the demo corpus with small, fast settings; override any field."""
    from indexer.config import BuildConfig

    fields = dict(corpus=DEMO_CORPUS, out=tmp / "index", embeddings=DEMO_EMBEDDINGS, limit=300, k=16, latents=256, epochs=30)
    fields.update(overrides)
    return BuildConfig(**fields)


def random_reading(seed: int, c: int, m: int, d: int = 6):
    """Synthetic evidence inputs: c candidates' embeddings (c, d), m probes read orthogonally to a unit query
    (m, d), the corpus mean (d,), and which candidates name (c, m) bool or fire (c, m) float32 each feature."""
    from indexer.evidence import query_orthogonal

    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(c, d)).astype(np.float32)
    x = rng.normal(size=d).astype(np.float32)
    x /= np.linalg.norm(x)
    probes = np.ascontiguousarray(query_orthogonal(rng.normal(size=(d, m)).astype(np.float32), x).T)
    mu = rng.normal(scale=0.1, size=d).astype(np.float32)
    word = rng.random((c, m)) < 0.3
    firing = np.where(rng.random((c, m)) < 0.3, rng.random((c, m)) * 3, 0).astype(np.float32)
    return emb, probes, mu, word, firing


def make_tiny_index(n_docs: int = 240, d: int = 16, n_features: int = 24, k: int = 4, seed: int = 0):
    """A synthetic IndexData with known structure: each document is a positive mix of 3 planted decoder
    directions; the SAE is the exact planted dictionary (encoder = decoder transpose), so codes are exact
    enough to test retrieval and steering without training."""
    import faiss  # noqa: F401  (imported for its side effect of loading before torch in some builds)

    from indexer.artifacts import IndexData
    from indexer.codes import SparseCodes, feature_stats, invert
    from indexer.corpus import corpus_from_table
    from indexer.families import Families
    from indexer.index import build_faiss
    from indexer.names import FeatureNames
    from indexer.sae import TopKSae, encode_array

    import pyarrow as pa
    import torch

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    # More features than dimensions: planted directions are near-orthogonal, not orthogonal.
    w_dec = rng.normal(size=(n_features, d)).astype(np.float32)
    w_dec[:d] = q.T[:d]
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    sae = TopKSae(d, n_features, k, seed=seed)
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(w_dec))
        sae.W_enc.copy_(torch.from_numpy(w_dec.T.copy()))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    active = np.stack([rng.choice(n_features, 3, replace=False) for _ in range(n_docs)])
    weights = rng.uniform(0.5, 1.5, size=(n_docs, 3)).astype(np.float32)
    emb = np.einsum("nk,nkd->nd", weights, w_dec[active]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    idx, val = encode_array(sae, emb)
    codes = SparseCodes(idx, val, n_features)
    inv = invert(codes)
    stats = feature_stats(inv, n_docs)
    table = pa.table(
        {
            "id": [f"doc{i:04d}" for i in range(n_docs)],
            "title": [f"Document {i} about " + " and ".join(f"topic{f}" for f in active[i]) for i in range(n_docs)],
            "abstract": ["synthetic"] * n_docs,
            "categories": [[f"cat.{active[i][0] % 3}"] for i in range(n_docs)],
            "authors": [[] for _ in range(n_docs)],
        }
    )
    names = FeatureNames(
        names=[f"topic{f} words" for f in range(n_features)],
        descriptions=[f"documents about topic{f}" for f in range(n_features)],
        terms=[[f"topic{f}", "words"] for f in range(n_features)],
        trust=np.full(n_features, 0.9, dtype=np.float32),
        status=["live" if stats.density[f] > 0 else "dead" for f in range(n_features)],
    )
    # Two families: feature 0 heads 1..3, feature 4 heads 5..6.
    fam_of = np.full(n_features, -1, dtype=np.int32)
    fam_of[[0, 1, 2, 3]] = 0
    fam_of[[4, 5, 6]] = 1
    cos = w_dec @ w_dec.T
    np.fill_diagonal(cos, -np.inf)
    nb = np.argsort(-cos, axis=1)[:, :3].astype(np.int32)
    families = Families(
        parent=np.array([0, 4], dtype=np.int32),
        children=[np.array([1, 2, 3], dtype=np.int32), np.array([5, 6], dtype=np.int32)],
        names=["family zero", "family four"],
        feature_family=fam_of,
        neighbors=nb,
        neighbor_sims=np.take_along_axis(cos, nb, axis=1).astype(np.float32),
        cooccurring=nb,
        cooccur_counts=np.ones_like(nb),
    )
    return IndexData(
        corpus=corpus_from_table(table), embeddings=emb, faiss_index=build_faiss(emb), sae=sae, codes=codes,
        inv=inv, stats=stats, names=names, families=families, manifest={"created_at": "synthetic"},
    )


def dead_pid() -> int:
    """The id of a process that has ended: what a build killed mid-write leaves in its directory's name."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock a writer holds on its build directory or swap note while it works."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def leftovers(parent: Path) -> list[str]:
    """The hidden entries beside an index: build directories, indexes set aside, swap notes."""
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def dense_rows(codes, rows: np.ndarray) -> np.ndarray:
    """Dense (len(rows), n_features) float32 codes of some documents: the brute-force reference for the sparse
    readers."""
    out = np.zeros((len(rows), codes.n_features), dtype=np.float32)
    np.put_along_axis(out, codes.indices[rows].astype(np.int64), codes.values[rows], axis=1)
    return out


def fires(data, row, feature, threshold=0.0):
    """Whether `feature` fires on document `row` above threshold x its p90, read from the row's top-k code."""
    acts = data.codes.values[row][data.codes.indices[row] == feature]
    return bool(len(acts)) and float(acts.max()) > threshold * data.stats.p90[feature]


@pytest.fixture(scope="session")
def tiny_index():
    """The tiny index with its concepts, as a build writes them (a `Catalog` would otherwise fill them in on the
    shared fixture, and what a test sees would depend on which ran first)."""
    from indexer.concepts import build_concepts

    data = make_tiny_index()
    data.concepts = build_concepts(data.corpus.texts(), data.codes, data.embeddings)
    return data


@pytest.fixture(scope="session")
def concepts(tiny_index):
    """Word-feature table and probes of the tiny index."""
    return tiny_index.concepts


@pytest.fixture(scope="session")
def embedder():
    """The real default model, loaded once per test session."""
    from indexer.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory, embedder):
    """An index built by the real pipeline from 300 real abstracts of data/ (precomputed embeddings,
    spot-checked against the real model)."""
    from indexer.pipeline import build_index

    cfg = make_build_cfg(tmp_path_factory.mktemp("demo"))
    build_index(cfg, embedder=embedder)
    return cfg.out
