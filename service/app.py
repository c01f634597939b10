"""`create_app`: settings -> state (embedder + index loaded in the lifespan) -> routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from indexer.embed import Embedder
from service import errors
from service.logs import configure_logging
from service.routes import admin, catalog, health, search
from service.settings import Settings
from service.state import AppState

log = logging.getLogger(__name__)

DESCRIPTION = """Search arXiv abstracts by meaning and steer the query with named sparse-autoencoder features.

Steering weights lie in [-2, 2]: 0 changes nothing, +1 is a strong boost of the concept a feature, family or
free-text concept stands for, -1 a strong suppression, ±2 the strongest; the `method` field picks the default
concept rescoring or the residual, decode-only, embedding-mix and text-rewrite baselines (see POST /search).
Admin endpoints need `Authorization: Bearer <SAE_SEARCH_ADMIN_KEY>`."""


def load_embedder(settings: Settings) -> Embedder:
    """The query embedder the settings ask for (`SAE_SEARCH_MODEL`, `_DEVICE`, `_QUERY_CACHE`, `_QUERY_PRECISION`)."""
    return Embedder(settings.model, device=settings.device, query_cache=settings.query_cache,
                    query_precision=settings.query_precision)


def create_app(settings: Settings | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. Heavy objects (the model, unless `embedder` is given, and the index) load in the lifespan,
    not here."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Spare BLAS threads wait on the request's own work and on the query's embedding. Set here, in the
        # server's main thread, the limit holds for numpy's OpenBLAS in every thread; FAISS's OpenMP count is
        # per thread and each search sets it. Over HTTP on the demo index, steered searches took p99 40 to 44 ms
        # with neither, 27 ms with the FAISS setting alone, 21 to 26 ms with both (BENCHMARKS.md).
        blas = threadpool_limits(settings.search_threads, user_api="blas")
        try:
            loaded = embedder or load_embedder(settings)
            state = AppState(settings, loaded)
            state.load()
            app.state.sae = state
            log.info("service ready index_dir=%s", settings.index_dir)
            yield
            state.jobs.join(timeout=1.0)
            if (job := state.jobs.active()) is not None:
                # Its thread dies with the process. The index on disk stays whole, old or new (builds swap by
                # rename), and the next start clears the half-written build directory.
                log.warning("rebuild abandoned at shutdown job_id=%s stage=%s; start it again", job.job_id, job.stage)
        finally:
            blas.restore_original_limits()

    app = FastAPI(title="sae-search", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)
    for module in (search, catalog, health, admin):
        app.include_router(module.router)
    return app
