"""HTTP routes, one module per resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


def get_and_head(router: APIRouter, path: str, **kwargs: Any) -> Callable[[F], F]:
    """`router.get(path, **kwargs)` that answers HEAD too (RFC 9110; load balancers and `curl -I` probe that way),
    with the same response model, so the same status and headers, Content-Length included. HEAD is kept out of the
    OpenAPI docs, where a second operation on one function would repeat GET's operation id."""

    def register(fn: F) -> F:
        router.head(path, include_in_schema=False, response_model=kwargs.get("response_model"))(fn)
        return router.get(path, **kwargs)(fn)

    return register
