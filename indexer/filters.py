"""Hard constraints on search results: documents that must or must not carry a feature or a family (any
member), answered from the inverted lists, and arXiv categories."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

from indexer.artifacts import IndexData
from indexer.catalog import Catalog
from indexer.errors import InvalidArgument, UnknownFeature, located
from indexer.wordsearch import has_text


MAX_THRESHOLD = 10.0
"""Largest `Filters.threshold` (a multiple of a feature's 90th-percentile activation), the API's bound too."""


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
        if not all(map(has_text, self.categories)):
            raise InvalidArgument("a category must not be blank")
        if not 0.0 <= self.threshold <= MAX_THRESHOLD:
            raise InvalidArgument(
                f"threshold must lie in [0, {MAX_THRESHOLD:g}] (a multiple of p90), got {self.threshold}"
            )

    @property
    def active(self) -> bool:
        return bool(self.require or self.exclude or self.categories)


@dataclass(frozen=True)
class FilterOutcome:
    """What a search's filters come to."""

    mask: np.ndarray | None
    """(n_docs,) bool documents passing every filter; None when no filter is active."""
    matched: int | None
    """How many documents pass every filter; None when no filter is active."""
    excluded: frozenset[int]
    """Every feature that `exclude` names, itself or as a member of a family it names."""
    notes: list[str]
    """What the user should know: conflicts (no document can pass), a target named twice, a threshold with nothing
    to apply to, unknown categories, and fewer documents passing than k."""


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
        """The corpus's categories that `wanted` names: itself or one under it as a prefix, in any case and Unicode
        form ("ａｓｔｒｏ-ｐｈ" is "astro-ph")."""
        w = unicodedata.normalize("NFKC", wanted).strip().lower()
        return [c for c in self._by_category if c.lower() == w or c.lower().startswith(w + ".")] if w else []

    def unknown_categories(self, wanted: list[str]) -> list[str]:
        """Those of `wanted` (non-blank) that no document has, as given."""
        return [w for w in wanted if w.strip() and not self._matching(w)]

    def firing_docs(self, target: Target, threshold: float = 0.0) -> np.ndarray:
        """int32 documents where the target feature (or any member of the target family) fires above
        threshold x its p90, from the inverted lists."""
        return self._firing(self._resolve(target)[1], threshold)

    def _resolve(self, target: Target) -> tuple[tuple[str, int], list[int]]:
        """The target as ("feature" | "family", id) and the features it stands for (never empty)."""
        if (target.feature is None) == (target.family is None):
            raise InvalidArgument("each require/exclude entry names exactly one of 'feature' or 'family'")
        if target.family is not None:
            fam = self.catalog.family_id(target.family)
            return ("family", fam), self.catalog.family_members(fam).tolist()
        f = self.catalog.feature_id(target.feature)
        return ("feature", f), [f]

    def _firing(self, members: list[int], threshold: float) -> np.ndarray:
        p90 = self.data.stats.p90
        parts = []
        for f in members:
            docs, acts = self.data.inv.postings(int(f))
            parts.append(docs[acts > threshold * p90[f]])
        return np.unique(np.concatenate(parts))

    def apply(self, filters: Filters, k: int) -> FilterOutcome:
        """Resolve every target once (an unknown one raises, naming its entry: "exclude.1: ...") and say what the
        filters come to for a search of k results."""
        def resolve(where: str, targets: list[Target]) -> dict[tuple[str, int], list[int]]:
            out: dict[tuple[str, int], list[int]] = {}
            for i, t in enumerate(targets):
                try:
                    key, members = self._resolve(t)
                except (InvalidArgument, UnknownFeature) as exc:
                    raise located(f"{where}.{i}", exc) from None
                repeat = f"{where} names {key[0]} {key[1]} more than once; once is enough"
                if key in out and repeat not in notes:
                    notes.append(repeat)
                out[key] = members
            return out

        notes: list[str] = []
        required, excluded = resolve("require", filters.require), resolve("exclude", filters.exclude)
        notes += _conflicts(filters, required, excluded)
        out = frozenset(f for members in excluded.values() for f in members)
        if not filters.active:
            return FilterOutcome(None, None, out, notes)
        n = len(self.data.corpus)
        mask = np.ones(n, dtype=bool)
        for (kind, i), members in required.items():
            hit = np.zeros(n, dtype=bool)
            hit[self._firing(members, filters.threshold)] = True
            mask &= hit
            if not hit.any():
                above = " above the threshold" if filters.threshold else ""
                notes.append(f"required {kind} {i} fires on no document{above}, so no document can pass")
        for members in excluded.values():
            mask[self._firing(members, filters.threshold)] = False
        if filters.categories:
            hit = np.zeros(n, dtype=bool)
            for wanted in filters.categories:
                for cat in self._matching(wanted):
                    hit[self._by_category[cat]] = True
            mask &= hit
            notes += [
                f"no document has the category {c!r} (GET /categories lists them)"
                for c in self.unknown_categories(filters.categories)
            ]
        matched = int(mask.sum())
        if matched == 0:
            notes.append("no document passes the filters, so there are no results")
        elif matched < k:
            notes.append(f"only {counted(matched, 'document passes', 'documents pass')} the filters, so fewer than "
                         f"k={k} results are returned")
        return FilterOutcome(mask, matched, out, notes)


def _conflicts(
    filters: Filters, required: dict[tuple[str, int], list[int]], excluded: dict[tuple[str, int], list[int]]
) -> list[str]:
    """Notes for each required feature or family whose every feature is excluded, itself or as a member of an
    excluded family (no document can pass), and for a threshold with nothing to apply to."""
    out = {f for members in excluded.values() for f in members}
    notes = []
    if filters.threshold and not (required or excluded):
        notes.append("threshold applies to require and exclude, and neither was given, so it changed nothing")
    for (kind, i), members in sorted(required.items()):
        if (kind, i) in excluded:
            notes.append(f"{kind} {i} is both required and excluded, so no document can pass")
        elif kind == "feature" and i in out:
            fam = min(j for (k, j), group in excluded.items() if k == "family" and i in group)
            notes.append(f"feature {i} is required but belongs to the excluded family {fam}, so no document can pass")
        elif out and set(members) <= out:
            notes.append(f"family {i} is required but each of its features is excluded, so no document can pass")
    return notes


def counted(n: int, one: str, many: str) -> str:
    """"1 document passes", "3 documents pass": n with the words that agree with it."""
    return f"{n} {one if n == 1 else many}"
