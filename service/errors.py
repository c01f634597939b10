"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from indexer.errors import (
    CorpusError,
    IndexNotReady,
    InvalidArgument,
    JobConflict,
    SaeSearchError,
    UnknownFeature,
    UnknownJob,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[SaeSearchError], int]] = [
    (UnknownFeature, 422),  # also UnknownFamily
    (InvalidArgument, 422),
    (CorpusError, 422),
    (JobConflict, 409),
    (UnknownJob, 404),
    (IndexNotReady, 503),
]


def _status_for(exc: SaeSearchError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p not in ("body", "query", "path")) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(SaeSearchError)
    async def domain_error(request: Request, exc: SaeSearchError) -> JSONResponse:
        body: dict = {"detail": str(exc)}
        code = _status_for(exc)
        if isinstance(exc, UnknownFeature):
            if exc.suggestions:
                body["suggestions"] = exc.suggestions
            # Looking up a feature or family that is not there is a missing resource; naming one in a
            # request body is invalid input.
            code = 404 if request.method == "GET" else code
        return JSONResponse(body, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # One readable sentence first, the structured list after it for programs.
        errors = [{"loc": _loc(tuple(e.get("loc", ()))), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
