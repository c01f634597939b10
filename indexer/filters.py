"""Hard constraints on search results: documents that must or must not carry a feature or a family (any
member), answered from the inverted lists, and arXiv categories."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from indexer.artifacts import IndexData
from indexer.catalog import Catalog
from indexer.errors import InvalidArgument, UnknownFeature, located


@dataclass(frozen=True)
class Target:
    """A feature or a family (any member counts) named in `require` / `exclude`."""

    feature: int | str | None = None
    family: int | str | None = None


@dataclass(frozen=True)
class Filters:
    """Hard constraints on results."""

    require: list[Target] = field(default_factory=list)
    """Every one must fire on a result."""
    exclude: list[Target] = field(default_factory=list)
    """None may fire on a result."""
    categories: list[str] = field(default_factory=list)
    """A result has at least one of these arXiv categories ("cs.CV"), or one under a prefix ("astro-ph"); case
    does not matter."""
    threshold: float = 0.0
    """A feature fires on a document when its activation exceeds threshold x its p90 activation."""

    def __post_init__(self) -> None:
        if any(not c.strip() for c in self.categories):
            raise InvalidArgument("a category must not be blank")
        if not 0.0 <= self.threshold <= 10.0:
            raise InvalidArgument(f"threshold must lie in [0, 10] (a multiple of p90), got {self.threshold}")

    @property
    def active(self) -> bool:
        return bool(self.require or self.exclude or self.categories)


class FilterIndex:
    """The documents each filter allows, over one loaded index."""

    def __init__(self, data: IndexData, catalog: Catalog) -> None:
        self.data = data
        self.catalog = catalog
        by_category: dict[str, list[int]] = {}
        for row, cats in enumerate(data.corpus.categories):
            for c in cats:
                by_category.setdefault(c, []).append(row)
        self._by_category = {c: np.asarray(rows, dtype=np.int64) for c, rows in by_category.items()}

    def category_counts(self) -> list[tuple[str, int]]:
        """Every category with how many documents have it, most first (ties by name)."""
        return sorted(((c, len(rows)) for c, rows in self._by_category.items()), key=lambda cn: (-cn[1], cn[0]))

    def _matching(self, wanted: str) -> list[str]:
        """The corpus's categories that `wanted` names: itself or one under it as a prefix, in any case."""
        w = wanted.strip().lower()
        return [c for c in self._by_category if c.lower() == w or c.lower().startswith(w + ".")] if w else []

    def unknown_categories(self, wanted: list[str]) -> list[str]:
        """Those of `wanted` (non-blank) that no document has, as given."""
        return [w for w in wanted if w.strip() and not self._matching(w)]

    def firing_docs(self, target: Target, threshold: float = 0.0) -> np.ndarray:
        """int32 documents where the target feature (or any member of the target family) fires above
        threshold x its p90, from the inverted lists."""
        if (target.feature is None) == (target.family is None):
            raise InvalidArgument("each require/exclude entry names exactly one of 'feature' or 'family'")
        if target.family is not None:
            members = self.catalog.family_members(self.catalog.family_id(target.family))
        else:
            members = [self.catalog.feature_id(target.feature)]
        p90 = self.data.stats.p90
        parts = []
        for f in members:  # never empty: a feature, or a family's parent and children
            docs, acts = self.data.inv.postings(int(f))
            parts.append(docs[acts > threshold * p90[f]])
        return np.unique(np.concatenate(parts))

    def _located_docs(self, where: str, target: Target, threshold: float) -> np.ndarray:
        try:
            return self.firing_docs(target, threshold)
        except (InvalidArgument, UnknownFeature) as exc:
            raise located(where, exc) from None

    def _key(self, t: Target) -> tuple[str, int]:
        if t.family is not None:
            return "family", self.catalog.family_id(t.family)
        return "feature", self.catalog.feature_id(t.feature)

    def _features(self, key: tuple[str, int]) -> set[int]:
        return set(self.catalog.family_members(key[1]).tolist()) if key[0] == "family" else {key[1]}

    def excluded_features(self, filters: Filters) -> set[int]:
        """Every feature that `exclude` names, itself or as a member of a family it names."""
        return set().union(*(self._features(self._key(t)) for t in filters.exclude))

    def conflicts(self, filters: Filters) -> list[str]:
        """Notes for each required feature or family whose every feature is excluded, itself or as a member of
        an excluded family (no document can pass), and for a threshold with nothing to apply to."""
        key, features = self._key, self._features
        excluded = {k: features(k) for k in map(key, filters.exclude)}
        out = set().union(*excluded.values())
        notes = []
        if filters.threshold and not (filters.require or filters.exclude):
            notes.append("threshold applies to require and exclude, and neither was given, so it changed nothing")
        for kind, i in sorted({key(t) for t in filters.require}):
            if (kind, i) in excluded:
                notes.append(f"{kind} {i} is both required and excluded, so no document can pass")
            elif kind == "feature" and i in out:
                fam = min(j for (k, j), members in excluded.items() if k == "family" and i in members)
                notes.append(f"feature {i} is required but belongs to the excluded family {fam}, so no document can pass")
            elif out and features((kind, i)) <= out:
                notes.append(f"family {i} is required but each of its features is excluded, so no document can pass")
        return notes

    def allowed(self, filters: Filters) -> np.ndarray:
        """(n_docs,) bool: documents passing every filter."""
        n = len(self.data.corpus)
        mask = np.ones(n, dtype=bool)
        for i, t in enumerate(filters.require):
            hit = np.zeros(n, dtype=bool)
            hit[self._located_docs(f"require.{i}", t, filters.threshold)] = True
            mask &= hit
        for i, t in enumerate(filters.exclude):
            mask[self._located_docs(f"exclude.{i}", t, filters.threshold)] = False
        if filters.categories:
            hit = np.zeros(n, dtype=bool)
            for wanted in filters.categories:
                for cat in self._matching(wanted):
                    hit[self._by_category[cat]] = True
            mask &= hit
        return mask
