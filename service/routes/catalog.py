from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BeforeValidator, Field

from indexer.catalog import family_summary, family_tree, feature_detail, list_families
from indexer.errors import InvalidArgument, located
from indexer.wordsearch import has_text
from service.catalog_schemas import CategoryOut, FamilyPage, FamilyTreeOut, FeatureMatchOut, FeatureOut
from service.deps import SearcherDep
from service.errors import responses
from service.routes import get_and_head
from service.schemas import MAX_NAME_CHARS

router = APIRouter(tags=["features"], responses=responses(503))


def _digits(value: object) -> object:
    # int's own parsing takes "1_0" as 10 and "1.0" or " 1" as 1: an address should mean one thing. A sign is
    # let through, for the bounds to refuse in their own words.
    if isinstance(value, str) and not (value.isascii() and value.removeprefix("-").isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


def _count(minimum: int, maximum: int | None = None) -> Any:
    """A path or query integer written in digits, within bounds. The bounds sit inside the digits check so that
    the OpenAPI schema shows them as `minimum` and `maximum` (outside it, pydantic writes a bare `ge`)."""
    return Annotated[Annotated[int, Field(ge=minimum, le=maximum)], BeforeValidator(_digits)]


Id = _count(0)


TOTAL_HEADER = {
    "X-Total-Count": {
        "description": "How many features match in all (the list is one page of them).", "schema": {"type": "integer"}
    }
}


@get_and_head(
    router, "/features", response_model=list[FeatureMatchOut], responses={200: {"headers": TOTAL_HEADER}, **responses(422)}
)
def find_features(
    searcher: SearcherDep,
    response: Response,
    q: Annotated[
        str | None,
        Query(
            min_length=1, max_length=MAX_NAME_CHARS,
            description="Words the feature should stand for. First comes an exact name; then features ranked by how "
            "well the words predict where they fire over the corpus (score 1 + an F-score in (0, 1], so the broad "
            "feature that best means the word leads, not a sub-topic or another field's use of it); then features "
            "whose names or distinctive terms merely contain the words (score < 1).",
        ),
    ] = None,
    limit: Annotated[_count(1, 100), Query(description="Number of features to return.")] = 10,
    offset: Annotated[_count(0), Query(description="Skip this many of the ordered features (paging).")] = 0,
    min_trust: Annotated[
        float, Query(ge=0, le=1, allow_inf_nan=False, description="Leave out features whose name is trusted less.")
    ] = 0.0,
    sort: Annotated[
        Literal["relevance", "trust", "density"],
        Query(description="'relevance': by score (with q), then trust, then density; 'trust' or 'density': by that, then score."),
    ] = "relevance",
) -> list:
    """Features that stand for the words of `q`, best first (without `q`, every feature that fires)."""
    if q is not None and not has_text(q):
        raise located("q", InvalidArgument("must not be blank; leave it out to list every feature"))
    total, page = searcher.catalog.search_page(q, limit, min_trust, sort, offset)
    response.headers["X-Total-Count"] = str(total)
    return page


@get_and_head(router, "/features/{feature_id}", response_model=FeatureOut, responses=responses(404, 422))
def get_feature(feature_id: Annotated[Id, Path(description="Feature id, from 0.")], searcher: SearcherDep) -> object:
    """One feature: name, description, density, trust, top documents, family, neighbours, co-firing features."""
    return feature_detail(searcher.catalog, feature_id)


@get_and_head(router, "/families", response_model=FamilyPage, responses=responses(422))
def get_families(
    searcher: SearcherDep,
    offset: Annotated[_count(0), Query(description="Skip this many families (paging).")] = 0,
    limit: Annotated[_count(1, 500), Query(description="Number of families to return.")] = 50,
) -> FamilyPage:
    """Feature families, largest first, paged."""
    total, page = list_families(searcher.catalog, offset, limit)
    return FamilyPage(total=total, offset=offset, limit=limit, families=page)


@get_and_head(router, "/families/{family_id}", response_model=FamilyTreeOut, responses=responses(404, 422))
def get_family(
    family_id: Annotated[Id, Path(description="Family id, from 0 (largest first).")], searcher: SearcherDep
) -> FamilyTreeOut:
    """One family as a tree of named features."""
    return FamilyTreeOut(
        family=family_summary(searcher.catalog, family_id), tree=family_tree(searcher.catalog, family_id)
    )


@get_and_head(router, "/categories", response_model=list[CategoryOut])
def get_categories(searcher: SearcherDep) -> list[CategoryOut]:
    """The corpus's arXiv categories, which POST /search's `categories` filter takes, with their document counts."""
    return [CategoryOut(category=c, documents=n) for c, n in searcher.filters.category_counts()]
