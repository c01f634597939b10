"""The one place where domain errors become HTTP responses. (`/health` answers its own 503: a probe's body is
`HealthOut`, the status with the reason, not an error.)"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from indexer.errors import (
    CorpusError,
    IndexNotReady,
    InvalidArgument,
    JobConflict,
    SaeSearchError,
    UnknownFeature,
    UnknownJob,
)

from service.schemas import MAX_NAME_CHARS, ErrorOut

log = logging.getLogger(__name__)


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for the error answers a router gives, all shaped as `ErrorOut`."""
    return {code: {"model": ErrorOut, "description": WHAT[code]} for code in codes}


WHAT = {
    401: "Missing or wrong admin key.",
    403: "Admin endpoints are disabled (no SAE_SEARCH_ADMIN_KEY).",
    404: "No such feature, family or job.",
    409: "A rebuild is already running.",
    422: "Invalid input: `detail` says what to change, and `errors` lists each field at fault.",
    503: "No index is loaded yet.",
}

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
    """Where the error is, without the kind of location FastAPI puts first (so the body's `query` field stays)."""
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    return ".".join(str(p) for p in parts) or "request"


UNION_BRANCHES = ("int", "constrained-str", "str")
"""The tags pydantic adds to a location for each branch of a union that failed (`feature`: an id or a name)."""


def _error(e: dict) -> dict:
    loc = tuple(e.get("loc", ()))
    if e.get("type") == "json_invalid":
        reason = (e.get("ctx") or {}).get("error", "")
        return {"loc": "request", "msg": f"the body is not valid JSON ({reason} at character {loc[-1] if loc else '?'})"}
    if loc == ("body",) and e.get("type") in ("model_attributes_type", "dict_type", "missing"):
        return {"loc": "request", "msg": "the body must be a JSON object (content-type: application/json)"}
    if len(loc) > 1 and loc[-1] in UNION_BRANCHES and loc[-2] in ("feature", "family"):
        return {"loc": _loc(loc[:-1]), "msg": f"must be an id (a whole number) or a name (1 to {MAX_NAME_CHARS} characters)"}
    return {"loc": _loc(loc), "msg": e.get("msg", "").removeprefix("Value error, ")}


def _errors(raw: list[dict]) -> list[dict]:
    """Each error once: a union's failed branches say the same thing about one field."""
    out: list[dict] = []
    for e in map(_error, raw):
        if e not in out:
            out.append(e)
    return out


def _invalid(errors: list[dict]) -> JSONResponse:
    """A 422: one readable sentence first, the structured list after it for programs."""
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


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
            code = 404 if request.method in ("GET", "HEAD") else code
        if code == 500:  # a domain error no status stands for is the server's fault: keep its trace
            log.error("unmapped %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        if code == 422:  # the request field at fault (`located`), as validation names it, or the request as a whole
            body["errors"] = [{"loc": exc.where, "msg": exc.reason} if exc.where else {"loc": "request", "msg": str(exc)}]
        return JSONResponse(body, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(_errors(exc.errors()))

    @app.exception_handler(HTTPException)
    async def unreadable_body(request: Request, exc: HTTPException) -> Response:
        # FastAPI answers a body that json.loads cannot even start on (not UTF-8, or nested past its recursion
        # limit) with a bare 400; it is invalid input like any other.
        if exc.status_code != 400 or exc.detail != "There was an error parsing the body":
            return await http_exception_handler(request, exc)
        try:
            (await request.body()).decode("utf-8")
            msg = "the body's JSON nests too deeply to read"
        except UnicodeDecodeError as err:
            msg = f"the body is not UTF-8 text (byte {err.start})"
        return _invalid([{"loc": "request", "msg": msg}])

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
