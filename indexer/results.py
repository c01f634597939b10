"""What a search returns: the ranked hits with their explanations, and the query's code before and after
steering. Plain dataclasses; indexer/search.py fills them, service/schemas.py mirrors them for the API."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.steer import DEFAULT_METHOD, ResolvedSteer


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
