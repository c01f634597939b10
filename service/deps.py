"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from indexer.search import Searcher
from service.state import AppState

_bearer = HTTPBearer(auto_error=False)


def get_state(request: Request) -> AppState:
    return request.app.state.sae


def get_searcher(state: Annotated[AppState, Depends(get_state)]) -> Searcher:
    return state.searcher


def require_admin(
    state: Annotated[AppState, Depends(get_state)],
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    # HTTP strips the spaces around a header's value, so a key's own could never be sent: a blank key is none.
    key = state.settings.admin_key.get_secret_value().strip() if state.settings.admin_key else ""
    if not key:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: set SAE_SEARCH_ADMIN_KEY to enable them")
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), key.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong admin key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


StateDep = Annotated[AppState, Depends(get_state)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]
AdminDep = Depends(require_admin)
"""Bare, not an `Annotated` alias: the admin router lists it in `dependencies=`, which takes `Depends` objects."""
