from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from service.deps import AdminDep, StateDep
from service.errors import responses
from service.routes import get_and_head
from service.schemas import JobAccepted, JobOut, RebuildIn

router = APIRouter(tags=["admin"], dependencies=[AdminDep], responses=responses(401, 403))


@router.post(
    "/index/rebuild", response_model=JobAccepted, status_code=status.HTTP_202_ACCEPTED, responses=responses(409, 422)
)
def rebuild(state: StateDep, body: RebuildIn | None = None) -> JobAccepted:
    """Start rebuilding the index in the background; searches use the old index until the new one is ready."""
    body = body or RebuildIn()
    return JobAccepted(job_id=state.start_rebuild(body.corpus, body.embeddings))


@get_and_head(router, "/jobs/{job_id}", response_model=JobOut, responses=responses(404, 422))
def get_job(
    job_id: Annotated[str, Path(description="The id POST /index/rebuild answered with.")], state: StateDep
) -> JobOut:
    """State and stage of a rebuild job."""
    return JobOut.model_validate(vars(state.jobs.get(job_id)))
