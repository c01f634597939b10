"""Pydantic models of the feature, family and category browsing responses (service/routes/catalog.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.schemas import AttrsOut, RefOut, WordMatchOut


class FeatureMatchOut(AttrsOut):
    id: int
    name: str
    density: float = Field(description="Share of the corpus's abstracts the feature fires on.")
    trust: float = Field(description="AUROC of the name's terms telling held-out documents it fires on from others (0.5: chance).")
    status: str = Field(description="'live', 'dense' (fires on a large share of the corpus) or 'dead'.")
    score: float = Field(
        description="3: the text is the feature's name. 1 to 2: the text's words predict where the feature fires "
        "(higher is a clearer handle). Below 1: the words appear only in its name or distinctive terms, a weak match."
    )
    matched_term: WordMatchOut | None = Field(
        description="Why the words predict the feature (score 1 to 2, or an exact name that also does): the term "
        "and how its abstracts and the feature's overlap. A name can say less than the feature covers: read recall. "
        "Null for a name-only match."
    )
    concept_term: str | None = Field(
        description="The word a steer of this feature follows: its steering probe is made from that word's abstracts. "
        "When it is not the word searched for, the feature stands for that word too, but a steer reads abstracts by "
        "this one (and by where the feature fires). Null when the probe is made from the feature's own abstracts."
    )


class DocActivationOut(AttrsOut):
    id: str
    title: str
    activation: float = Field(description="The feature's activation in this abstract's SAE code.")


class RelatedOut(AttrsOut):
    id: int
    name: str
    value: float = Field(description="Decoder cosine for neighbors, documents fired together for cooccurring.")


class FeatureOut(AttrsOut):
    id: int
    name: str
    description: str = Field(description="One line: its top terms and how often it fires.")
    density: float = Field(description="Share of the corpus's abstracts the feature fires on.")
    trust: float = Field(description="AUROC of the name's terms telling held-out documents it fires on from others (0.5: chance).")
    status: Literal["live", "dead", "dense"]
    p90: float = Field(description="90th-percentile activation where it fires: the unit of a steer's code edit.")
    terms: list[str] = Field(description="Terms far more frequent in its strongest abstracts than in the corpus, most first.")
    concept_term: str | None = Field(description="The word this feature stands for; steering reads documents with that word's probe.")
    top_documents: list[DocActivationOut] = Field(description="The abstracts it fires on most strongly.")
    family: RefOut | None = Field(description="The family it belongs to as a child, else the one it heads; null for none.")
    neighbors: list[RelatedOut] = Field(description="Features with the most similar decoder directions.")
    cooccurring: list[RelatedOut] = Field(description="Features that fire on the same abstracts most often.")


class FamilyOut(AttrsOut):
    id: int
    name: str
    parent: RefOut = Field(description="The broad feature the family is named after.")
    children: list[RefOut] = Field(description="Its narrower features, strongest link first.")
    size: int = Field(description="Parent plus children.")


class FamilyPage(BaseModel):
    total: int = Field(description="Families in the index; page through them with offset and limit.")
    offset: int
    limit: int
    families: list[FamilyOut]


class TreeNodeOut(AttrsOut):
    id: int
    name: str
    family: int | None = Field(description="Id of the family this feature heads, if any (its subtree is that family).")
    children: list["TreeNodeOut"]


class FamilyTreeOut(BaseModel):
    family: FamilyOut
    tree: TreeNodeOut


class CategoryOut(BaseModel):
    category: str
    documents: int = Field(
        description="Documents that list exactly this category (an abstract can have several). As a filter, an "
        "archive such as 'astro-ph' also selects its subject classes ('astro-ph.GA', ...), so it can match more.",
    )
