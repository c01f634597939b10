from __future__ import annotations

from fastapi import APIRouter, Response, status

from indexer.errors import IndexNotReady
from service.deps import StateDep
from service.routes import get_and_head
from service.schemas import HealthOut, IndexInfo

router = APIRouter(tags=["health"])
NO_INDEX = {503: {"model": HealthOut, "description": "No index is loaded yet (`status`: no_index)."}}


@get_and_head(router, "/health", response_model=HealthOut, responses=NO_INDEX)
def health(state: StateDep, response: Response) -> HealthOut:
    """Liveness and the loaded index's size (503 while no index is loaded; HEAD answers the status alone)."""
    try:
        data = state.searcher.data
    except IndexNotReady:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthOut(status="no_index", index=None, reason=state.load_error)
    built = data.manifest.get("created_at")  # unchecked when checksums are off: never let it fail the probe
    info = IndexInfo(documents=len(data.corpus), features=data.sae.n, built_at=built if isinstance(built, str) else "")
    return HealthOut(status="ok", index=info)
