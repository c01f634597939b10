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
    key = state.settings.admin_key
    if key is None or not key.get_secret_value():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin endpoints are disabled: set SAE_SEARCH_ADMIN_KEY to enable them")
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), key.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong admin key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


StateDep = Annotated[AppState, Depends(get_state)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]
AdminDep = Depends(require_admin)
