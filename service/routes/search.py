from __future__ import annotations

import time

from fastapi import APIRouter, Response

from indexer.filters import Filters, Target
from indexer.search import MAX_STEERED_LISTED
from indexer.steer_terms import SteerTerm
from service.deps import SearcherDep, StateDep
from service.errors import responses
from service.schemas import ResolvedSteerOut, SearchIn, SearchOut

router = APIRouter(tags=["search"], responses=responses(422, 503))


@router.post("/search", response_model=SearchOut)
def search(body: SearchIn, state: StateDep, searcher: SearcherDep) -> Response:
    """Search abstracts by meaning, steered by features, families or concepts; every result explains its score."""
    start = time.perf_counter()
    vec = state.embedder.embed_query(body.query)
    terms = [SteerTerm(weight=s.weight, feature=s.feature, family=s.family, concept=s.concept) for s in body.steer]
    filters = Filters(
        require=[Target(t.feature, t.family) for t in body.require],
        exclude=[Target(t.feature, t.family) for t in body.exclude],
        categories=body.categories, threshold=body.threshold,
    )
    out = searcher.search(
        vec, body.k, terms, method=body.method, filters=filters, query=body.query, embed=state.embedder.embed_query
    )
    response = SearchOut(
        results=out.hits,
        query_features=out.query_features,
        steered_features=out.steered_features,
        steer=[
            ResolvedSteerOut(
                weight=r.term.weight, family=r.family, concept=r.term.concept,
                features=r.features[:MAX_STEERED_LISTED], n_features=len(r.features),
                shares=[round(s, 6) for s in r.shares[:MAX_STEERED_LISTED]], text=r.text,
                matched_term=r.matched_term,
            )
            for r in out.resolved
        ],
        method=out.method, matched=out.matched, notes=out.notes,
        took_ms=round((time.perf_counter() - start) * 1000, 3),
    )
    # Built and so validated here: handing FastAPI the JSON skips its second validation of the response, which
    # for a sync route is one more hop through the thread pool (about half a millisecond a search, BENCHMARKS.md).
    return Response(response.model_dump_json(), media_type="application/json")

