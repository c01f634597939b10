"""Query-time retrieval with SAE steering. Pure functions over a loaded index and a query vector.

Steering edits the query's SAE code and carries the edit back to the dense vector (the residual edit):
    z'_f = z_f + w * STEER_SCALE * p90_f          for every steered feature f
    x'   = normalise(x + sum_f (z'_f - z_f) * W_dec[f])
so weight 0 changes nothing, +1 adds the feature at STEER_SCALE times a strong activation typical of it
(its 90th-percentile activation where it fires), and -1 takes the same amount away, which removes the
feature where the query has it and pushes the query away from it where it does not. Everything the
decoder cannot express (the SAE's reconstruction error) is kept, so an unsteered query is plain dense
retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from indexer.artifacts import IndexData
from indexer.catalog import Catalog, Ref
from indexer.errors import InvalidArgument, UnknownFeature
from indexer.index import search_faiss

STEER_SCALE = 2.0
MAX_WEIGHT = 2.0


@dataclass(frozen=True)
class SteerTerm:
    """One steering instruction: exactly one of `feature` / `family`, and a weight in [-2, 2]."""

    weight: float
    feature: int | str | None = None
    family: int | str | None = None


@dataclass(frozen=True)
class ResolvedSteer:
    """A steer term after name resolution: the features it moves and by how much (activation units)."""

    term: SteerTerm
    features: list[Ref]
    family: Ref | None
    deltas: list[float]


@dataclass(frozen=True)
class FeatureActivation:
    id: int
    name: str
    activation: float


@dataclass(frozen=True)
class Hit:
    row: int
    id: str
    title: str
    score: float
    categories: list[str]
    features: list[FeatureActivation]


@dataclass
class SearchOutcome:
    hits: list[Hit]
    query_features: list[FeatureActivation]
    steered_features: list[FeatureActivation]
    resolved: list[ResolvedSteer] = field(default_factory=list)


class Searcher:
    """One loaded index ready for queries: the data, its catalog, and the SAE weights as numpy arrays."""

    def __init__(self, data: IndexData) -> None:
        self.data = data
        self.catalog = Catalog(data)
        w = data.sae.weights_numpy()
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]
        self.k = data.sae.k

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Dense SAE code of one query: x (d,) float32 -> z (n,) float32 with at most k non-zeros."""
        pre = np.maximum((x - self.b_dec) @ self.W_enc + self.b_enc, 0.0)
        top = np.argpartition(-pre, self.k)[: self.k]
        z = np.zeros_like(pre)
        z[top] = pre[top]
        return z

    def resolve(self, terms: list[SteerTerm]) -> list[ResolvedSteer]:
        """Turn steer terms into per-feature activation deltas (see the module docstring)."""
        out = []
        p90 = self.data.stats.p90
        for term in terms:
            if (term.feature is None) == (term.family is None):
                raise InvalidArgument("each steer term names exactly one of 'feature' or 'family'")
            if not -MAX_WEIGHT <= term.weight <= MAX_WEIGHT:
                raise InvalidArgument(f"steer weight must lie in [-{MAX_WEIGHT}, {MAX_WEIGHT}], got {term.weight}")
            family = None
            if term.family is not None:
                fam = self.catalog.family_id(term.family)
                family = self.catalog.family_ref(fam)
                members = [int(f) for f in self.catalog.family_members(fam) if p90[f] > 0]
                # A family's weight is spread so that the whole edit has the size of one feature's edit.
                share = 1.0 / np.sqrt(max(len(members), 1))
            else:
                f = self.catalog.feature_id(term.feature)
                if p90[f] <= 0:
                    raise UnknownFeature(f"feature {f} ({self.data.names.names[f]!r}) never fires, so it cannot steer")
                members, share = [f], 1.0
            deltas = [float(term.weight * STEER_SCALE * p90[f] * share) for f in members]
            out.append(ResolvedSteer(term, [self.catalog.ref(f) for f in members], family, deltas))
        return out

    def _activations(self, z: np.ndarray) -> list[FeatureActivation]:
        nz = np.flatnonzero(z > 0)
        nz = nz[np.argsort(-z[nz], kind="stable")]
        names = self.data.names.names
        return [FeatureActivation(int(f), names[f], round(float(z[f]), 5)) for f in nz]

    def search(self, x: np.ndarray, k: int, terms: list[SteerTerm] | None = None) -> SearchOutcome:
        """Top-k documents for query vector x (d,) float32 (unit norm), steered by `terms`."""
        if not 1 <= k <= 100:
            raise InvalidArgument(f"k must be between 1 and 100, got {k}")
        x = np.asarray(x, dtype=np.float32)
        z = self.encode(x)
        resolved = self.resolve(terms or [])
        delta = np.zeros_like(z)
        for r in resolved:
            for ref, d in zip(r.features, r.deltas):
                delta[ref.id] += d
        x_steered = x
        if delta.any():
            moved = np.flatnonzero(delta)
            x_steered = x + delta[moved] @ self.W_dec[moved]
            x_steered = (x_steered / max(float(np.linalg.norm(x_steered)), 1e-12)).astype(np.float32)
        z_steered = np.maximum(z + delta, 0.0)
        scores, rows = search_faiss(self.data.faiss_index, x_steered[None, :], k)
        hits = [self._hit(int(r), float(s), z_steered) for s, r in zip(scores[0], rows[0]) if r >= 0]
        return SearchOutcome(hits, self._activations(z), self._activations(z_steered), resolved)

    def _hit(self, row: int, score: float, z_query: np.ndarray) -> Hit:
        """A result with the features it shares with the (steered) query, largest joint activation first."""
        corpus, codes, names = self.data.corpus, self.data.codes, self.data.names.names
        feats, acts = codes.indices[row], codes.values[row]
        shared = [(float(z_query[f] * a), int(f), float(a)) for f, a in zip(feats, acts) if a > 0 and z_query[f] > 0]
        shared.sort(reverse=True)
        return Hit(
            row=row, id=corpus.ids[row], title=corpus.titles[row], score=round(score, 6),
            categories=list(corpus.categories[row]),
            features=[FeatureActivation(f, names[f], round(a, 5)) for _, f, a in shared],
        )
