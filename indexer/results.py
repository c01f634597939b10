"""What a search returns: the ranked hits with their explanations, and the query's code before and after
steering. Plain dataclasses; indexer/search.py fills them, service/schemas.py mirrors them for the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from indexer.steer import DEFAULT_METHOD
from indexer.steer_terms import ResolvedSteer

Part = tuple[int | None, str, float]
"""One part of a result's score difference from its plain cosine: (feature id or None, name, value)."""

MAX_CONTRIBUTIONS = 10
"""Contributions listed per result: the largest, then one entry for the rest (a family's hundreds of members
each add a sliver; listing them all made a family suppression's response 94 KB, 59 KB of it slivers)."""


@dataclass(frozen=True)
class FeatureActivation:
    id: int
    name: str
    activation: float


@dataclass(frozen=True)
class Contribution:
    """Part of a result's score difference from its plain cosine; `id` None for a non-feature part."""

    id: int | None
    name: str
    value: float


class Scored(NamedTuple):
    """A ranked document before `Searcher` dresses it as a `Hit`."""

    row: int
    score: float
    plain: float
    """Its cosine with the unsteered query."""
    parts: list[Part]
    """What moved `score` from `plain`, before `largest_contributions` and rounding."""


@dataclass(frozen=True)
class Hit:
    row: int
    id: str
    title: str
    score: float
    plain_score: float
    categories: list[str]
    features: list[FeatureActivation]
    contributions: list[Contribution]


@dataclass
class SearchOutcome:
    hits: list[Hit]
    query_features: list[FeatureActivation]
    steered_features: list[FeatureActivation]
    resolved: list[ResolvedSteer] = field(default_factory=list)
    method: str = DEFAULT_METHOD
    matched: int | None = None
    """Documents passing the filters (None without filters)."""
    notes: list[str] = field(default_factory=list)


def rounded_contributions(parts: list[Part], score: float, plain: float) -> list[Contribution]:
    """(id, name, value) parts to 6 decimals that add up to the rounded score less the rounded plain score: each
    rounded alone, they missed it by a few millionths, so the largest takes up the difference."""
    units = [round(value * 1e6) for _, _, value in parts]
    if units:
        units[max(range(len(parts)), key=lambda i: abs(parts[i][2]))] += round(score * 1e6) - round(plain * 1e6) - sum(units)
    # A sliver that rounds to 0 added nothing.
    return [Contribution(fid, name, u / 1e6) for (fid, name, _), u in zip(parts, units) if u != 0]


def largest_contributions(parts: list[Part], limit: int = MAX_CONTRIBUTIONS) -> list[Part]:
    """At most `limit` (>= 2) entries of one result's contributions (id, name, value), largest |value| first:
    the limit - 1 largest as they are, then one entry (id None) summing the others, so the list still adds up
    to the same score difference. Entries of one feature (two terms that steer it) are summed into one, and
    entries of exactly 0 left out."""
    merged: dict[tuple[int | None, str], float] = {}
    for fid, name, value in parts:
        merged[(fid, name)] = merged.get((fid, name), 0.0) + value
    ranked = sorted(((f, n, v) for (f, n), v in merged.items() if v != 0.0), key=lambda p: -abs(p[2]))
    if len(ranked) <= limit:
        return ranked
    rest = ranked[limit - 1 :]
    return ranked[: limit - 1] + [(None, f"the other {len(rest)} parts", float(sum(p[2] for p in rest)))]
