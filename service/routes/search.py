from __future__ import annotations

import time

from fastapi import APIRouter

from indexer.search import SteerTerm
from service.deps import SearcherDep, StateDep
from service.schemas import ResolvedSteerOut, SearchIn, SearchOut

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchOut)
def search(body: SearchIn, state: StateDep, searcher: SearcherDep) -> SearchOut:
    """Search abstracts by meaning, optionally steering the query by features or families."""
    start = time.perf_counter()
    vec = state.embedder.embed_query(body.query)
    terms = [SteerTerm(weight=s.weight, feature=s.feature, family=s.family) for s in body.steer]
    out = searcher.search(vec, body.k, terms)
    return SearchOut(
        results=out.hits,
        query_features=out.query_features,
        steered_features=out.steered_features,
        steer=[ResolvedSteerOut(weight=r.term.weight, family=r.family, features=r.features) for r in out.resolved],
        took_ms=round((time.perf_counter() - start) * 1000, 3),
    )
