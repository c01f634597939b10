"""Pydantic models of every request and response."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.search import MAX_WEIGHT, STEER_SCALE

MAX_QUERY_CHARS = 2000
MAX_STEER_TERMS = 32


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SteerIn(BaseModel):
    """Boost (weight > 0) or suppress (weight < 0) one feature or family."""

    model_config = ConfigDict(extra="forbid")

    feature: int | str | None = Field(None, description="Feature id or exact feature name.")
    family: int | str | None = Field(None, description="Family id or exact family name; the weight is spread over its members.")
    weight: float = Field(
        ...,
        ge=-MAX_WEIGHT,
        le=MAX_WEIGHT,
        description=(
            f"In [-{MAX_WEIGHT:g}, {MAX_WEIGHT:g}]. 0 changes nothing; +1 adds the feature at {STEER_SCALE:g}x its "
            "90th-percentile activation; -1 takes the same amount away."
        ),
    )

    @model_validator(mode="after")
    def _one_target(self) -> "SteerIn":
        if (self.feature is None) == (self.family is None):
            raise ValueError("name exactly one of 'feature' or 'family'")
        return self


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., max_length=MAX_QUERY_CHARS, description="What to search for, in plain words.")
    k: int = Field(10, ge=1, le=100, description="Number of results.")
    steer: list[SteerIn] = Field(default_factory=list, max_length=MAX_STEER_TERMS)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query must not be empty")
        return v


class FeatureActivationOut(_Out):
    id: int
    name: str
    activation: float


class RefOut(_Out):
    id: int
    name: str


class HitOut(_Out):
    id: str
    title: str
    score: float
    categories: list[str]
    features: list[FeatureActivationOut]


class ResolvedSteerOut(BaseModel):
    weight: float
    family: RefOut | None
    features: list[RefOut]


class SearchOut(BaseModel):
    results: list[HitOut]
    query_features: list[FeatureActivationOut]
    steered_features: list[FeatureActivationOut]
    steer: list[ResolvedSteerOut]
    took_ms: float


class FeatureMatchOut(_Out):
    id: int
    name: str
    density: float
    trust: float
    status: str
    score: float


class DocActivationOut(_Out):
    id: str
    title: str
    activation: float


class RelatedOut(_Out):
    id: int
    name: str
    value: float = Field(description="Decoder cosine for neighbors, documents fired together for cooccurring.")


class FeatureOut(_Out):
    id: int
    name: str
    description: str
    density: float
    trust: float
    status: Literal["live", "dead", "dense"]
    p90: float
    terms: list[str]
    top_documents: list[DocActivationOut]
    family: RefOut | None
    neighbors: list[RelatedOut]
    cooccurring: list[RelatedOut]


class FamilyOut(_Out):
    id: int
    name: str
    parent: RefOut
    children: list[RefOut]
    size: int


class FamilyPage(BaseModel):
    total: int
    offset: int
    limit: int
    families: list[FamilyOut]


class TreeNodeOut(_Out):
    id: int
    name: str
    family: int | None
    children: list["TreeNodeOut"]


class FamilyTreeOut(BaseModel):
    family: FamilyOut
    tree: TreeNodeOut


class IndexInfo(BaseModel):
    documents: int
    features: int
    built_at: str


class HealthOut(BaseModel):
    status: Literal["ok", "no_index"]
    index: IndexInfo | None


class RebuildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: str | None = Field(None, description="Corpus file inside the data directory; default: the configured corpus.")
    embeddings: str | None = Field(None, description="Precomputed embeddings inside the data directory, aligned with the corpus.")


class JobAccepted(BaseModel):
    job_id: str


class JobOut(BaseModel):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    stage: str | None
    error: str | None
    created_at: str
    finished_at: str | None
