"""Pydantic models of every request and response."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints, field_validator, model_validator

from indexer.edits import MIX_BETA
from indexer.evidence import FIRE_EVIDENCE, WORD_EVIDENCE
from indexer.filters import MAX_THRESHOLD
from indexer.pipeline import BUILD_STAGES
from indexer.results import MAX_CONTRIBUTIONS
from indexer.search import MAX_K, MAX_STEERED_LISTED
from indexer.steer import BOOST_FLOOR, BOOST_SCALE, DEFAULT_METHOD, METHODS, SUPPRESS_CAP, SUPPRESS_SCALE
from indexer.steer_terms import MAX_WEIGHT, STEER_SCALE
from indexer.wordsearch import has_text

MAX_QUERY_CHARS = 2000
MAX_STEER_TERMS = 32
MAX_NAME_CHARS = 200

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
"""A feature, family or category named in a request (bounded: unknown names are echoed in errors and notes)."""
MAX_FILTERS = 32

Method = Literal[METHODS]  # type: ignore[valid-type]

WEIGHT_DOC = (
    f"In [-{MAX_WEIGHT:g}, {MAX_WEIGHT:g}]; 0 changes nothing and the effect grows linearly with the weight. With the "
    f"default 'concept' method a document's concept evidence (probe reading orthogonal to the query, "
    f"+{WORD_EVIDENCE:g} if it contains one of the feature's words, +{FIRE_EVIDENCE:g} per p90 of the feature's "
    f"activation in it, less its median over the candidates without the words or the feature) is ~0 for an "
    f"abstract without the concept and ~1 for a typical one with the word: +1 adds {BOOST_SCALE:g} x "
    f"clip((evidence - {BOOST_FLOOR:g}) / {1 - BOOST_FLOOR:g}, 0, 1) to its cosine score (a clear carrier "
    f"overtakes any document up to {BOOST_SCALE:g} more similar without it); -1 subtracts min({SUPPRESS_SCALE:g} x "
    f"max(evidence, 0), {SUPPRESS_CAP:g}) (a carrier gives way to a document without the concept up to "
    f"{SUPPRESS_CAP:g} less similar); +-2 doubles that. 'residual' and 'decode' move the query's SAE code by "
    f"weight x {STEER_SCALE:g} x the feature's 90th-percentile activation; 'mix' adds weight x "
    f"{MIX_BETA:g} x the embedding of the term's words."
)


class AttrsOut(BaseModel):
    """A response model read from an indexer dataclass's attributes."""

    model_config = ConfigDict(from_attributes=True)


class SteerIn(BaseModel):
    """Boost (weight > 0) or suppress (weight < 0) one feature, family or free-text concept."""

    model_config = ConfigDict(extra="forbid")

    feature: StrictInt | Name | None = Field(None, description="Feature id or exact feature name.")
    family: StrictInt | Name | None = Field(None, description="Family id or exact family name; the weight is spread over its members.")
    concept: str | None = Field(
        None, min_length=1, max_length=MAX_NAME_CHARS,
        description="Free text, e.g. 'clinical trials': resolved to the features that best stand for its words "
        "(the response's `steer` says which). 'mix' and 'rewrite' steer by the words themselves, so with them a "
        "text that no feature matches still steers (and resolves to no features).",
    )
    weight: StrictFloat = Field(..., ge=-MAX_WEIGHT, le=MAX_WEIGHT, allow_inf_nan=False, description=WEIGHT_DOC)

    @field_validator("concept")
    @classmethod
    def _no_blank_concept(cls, v: str | None) -> str | None:
        if v is not None and not has_text(v):
            raise ValueError("a concept must not be blank")
        return v

    @model_validator(mode="after")
    def _one_target(self) -> "SteerIn":
        if sum(v is not None for v in (self.feature, self.family, self.concept)) != 1:
            raise ValueError("name exactly one of 'feature', 'family' or 'concept'")
        return self


class TargetIn(BaseModel):
    """A feature, or a family (any member counts), that results must have (`require`) or lack (`exclude`)."""

    model_config = ConfigDict(extra="forbid")

    feature: StrictInt | Name | None = Field(None, description="Feature id or exact feature name.")
    family: StrictInt | Name | None = Field(None, description="Family id or exact family name.")

    @model_validator(mode="after")
    def _one_target(self) -> "TargetIn":
        if (self.feature is None) == (self.family is None):
            raise ValueError("name exactly one of 'feature' or 'family'")
        return self


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., max_length=MAX_QUERY_CHARS, description="What to search for, in plain words.")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="Number of results.")
    steer: list[SteerIn] = Field(
        default_factory=list, max_length=MAX_STEER_TERMS,
        description="Concepts to boost (weight > 0) or suppress (weight < 0): each names a feature, a family or free text.",
    )
    method: Method = Field(  # type: ignore[valid-type]
        DEFAULT_METHOD,
        description="How steer terms act. 'concept' (default): rescore the query's nearest documents (and the "
        "boosted features' strongest ones) by how strongly each carries the steered concept, read by each "
        "feature's concept probe. 'residual': edit the query's SAE code and add the edit to the query vector. "
        "'decode': the paper's decode-only edit (it drops the SAE's reconstruction error, so any weight but 0 "
        "moves the query by that much). 'mix': add the embedding of the term's words (Weaviate moveTo / "
        "moveAwayFrom). 'rewrite': append a boosted term's words to the query text and move the query toward "
        "its embedding by the term's weight (one term at 1: the rewritten query; boost only).",
    )
    require: list[TargetIn] = Field(default_factory=list, max_length=MAX_FILTERS, description="Features or families that must fire on every result.")
    exclude: list[TargetIn] = Field(default_factory=list, max_length=MAX_FILTERS, description="Features or families that must not fire on any result.")
    categories: list[Name] = Field(
        default_factory=list, max_length=MAX_FILTERS,
        description="Keep results with at least one of these arXiv categories, in any case; 'astro-ph' also matches "
        "'astro-ph.GA'. GET /categories lists those of the corpus.",
    )
    threshold: StrictFloat = Field(
        0.0, ge=0.0, le=MAX_THRESHOLD, allow_inf_nan=False,
        description="For require/exclude, a feature fires on a document when its activation exceeds threshold x "
        "its 90th-percentile activation (0: fires at all).",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not has_text(v):
            raise ValueError("query must not be empty")
        return v

    @field_validator("categories")
    @classmethod
    def _no_blank_category(cls, v: list[str]) -> list[str]:
        if not all(map(has_text, v)):
            raise ValueError("a category must not be blank (GET /categories lists them)")
        return v


class FeatureActivationOut(AttrsOut):
    id: int
    name: str
    activation: float = Field(description="The feature's activation in the SAE code (its p90 over the corpus is a strong one).")


class RefOut(AttrsOut):
    id: int
    name: str


class ContributionOut(AttrsOut):
    id: int | None = Field(description="Feature id; null for a part that is not one feature's (renormalisation, a rewritten query).")
    name: str = Field(description="The feature's name, or what the part is ('query renormalisation', 'the other N parts').")
    value: float = Field(description="What this part added to the score (negative: took away).")


class HitOut(AttrsOut):
    id: str
    title: str
    score: float = Field(description="plain_score + the sum of contributions.")
    plain_score: float = Field(description="Cosine similarity with the unsteered query.")
    categories: list[str]
    features: list[FeatureActivationOut] = Field(
        description="Features the result shares with the steered query's code, with the result's own activation, "
        "ordered by the product of the two (what each adds to their match)."
    )
    contributions: list[ContributionOut] = Field(
        description=f"What steering added to (or took from) the plain score, largest first; they add up to score - "
        f"plain_score. At most {MAX_CONTRIBUTIONS}: the last then sums the smaller ones (id null)."
    )


class WordMatchOut(AttrsOut):
    term: str = Field(description="The index's word or two-word phrase, from the text, that the feature stands for.")
    recall: float = Field(description="Share of the abstracts containing the term that the feature fires on.")
    precision: float = Field(description="Share of the abstracts the feature fires on that contain the term.")


class ResolvedSteerOut(BaseModel):
    weight: float
    family: RefOut | None
    concept: str | None = Field(description="The free text this term gave, if any.")
    features: list[RefOut] = Field(
        description=f"The features the term resolved to, at most {MAX_STEERED_LISTED}: a family's parent, then its "
        "children strongest first (`notes` says when there were more; GET /families/{id} lists them all)."
    )
    n_features: int = Field(description="How many features the term resolved to, listed or not.")
    shares: list[float] = Field(description="Each listed feature's share of the term's weight (over all of them, sum of squares 1).")
    text: str = Field(description="The words the 'mix' and 'rewrite' methods use for this term.")
    matched_term: WordMatchOut | None = Field(
        description="For a concept, the term of its text that its feature stands for, as GET /features?q= gives it."
    )


class SearchOut(BaseModel):
    results: list[HitOut]
    query_features: list[FeatureActivationOut] = Field(description="The query's SAE code before steering, strongest first.")
    steered_features: list[FeatureActivationOut] = Field(
        description=f"The code after the steer terms' edits (weight x {STEER_SCALE:g} x p90 per feature), clipped "
        "at 0: what 'decode' decodes ('residual' adds the unclipped edit to the query vector). Strongest first, "
        f"at most {MAX_STEERED_LISTED} (`notes` says when there were more, as when a family boost edits each of its "
        "members)."
    )
    steer: list[ResolvedSteerOut] = Field(description="What each steer term resolved to, in the request's order.")
    method: str = Field(description="The steering method used.")
    matched: int | None = Field(description="Documents passing require/exclude/categories; null without filters.")
    notes: list[str] = Field(description="Anything the caller should know, e.g. that filters left fewer than k documents.")
    took_ms: float = Field(description="Time the server spent on the search, in milliseconds.")


class ErrorItemOut(BaseModel):
    loc: str = Field(description="The request field at fault, dotted ('steer.0.weight'), or 'request'.")
    msg: str


class ErrorOut(BaseModel):
    """Every error answer: one readable sentence, and for invalid fields the list of them."""

    detail: str = Field(description="What went wrong and what to change.")
    errors: list[ErrorItemOut] | None = Field(
        None, description="Each field at fault ('request' for the request as a whole), on every 422."
    )
    suggestions: list[str] | None = Field(None, description="Close names, when a feature or family name is unknown.")


class IndexInfo(BaseModel):
    documents: int
    features: int
    built_at: str


class HealthOut(BaseModel):
    status: Literal["ok", "no_index"]
    index: IndexInfo | None
    reason: str | None = Field(
        None, description="With no index: why the index directory did not load (missing, damaged, old format)."
    )


class RebuildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: str | None = Field(
        None, min_length=1, max_length=1000,
        description="Corpus file inside the data directory; default (left out): the configured corpus.",
    )
    embeddings: str | None = Field(
        None, min_length=1, max_length=1000,
        description="Precomputed embeddings inside the data directory, aligned with the corpus.",
    )

    @field_validator("corpus", "embeddings")
    @classmethod
    def _no_blank_file(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be blank; leave the field out to use the configured file")
        return v


class JobAccepted(BaseModel):
    job_id: str


class JobOut(BaseModel):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    stage: str | None = Field(
        description=f"The build stage running or last reached ({', '.join(BUILD_STAGES)}, then swap: the new index "
        "replaces the served one)."
    )
    error: str | None = Field(description="Why a failed job failed.")
    created_at: str = Field(description="When the job was accepted (ISO 8601, UTC).")
    finished_at: str | None = Field(description="When it succeeded or failed (ISO 8601, UTC).")
