"""The application's state: settings, the query embedder, the one loaded index, and the rebuild jobs."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from indexer.artifacts import IndexData, load_index
from indexer.config import BuildConfig
from indexer.corpus_files import detect_format
from indexer.embed import Embedder
from indexer.errors import CorpusError, IndexNotReady, InvalidArgument, SaeSearchError, located, os_error_text
from indexer.pipeline import build_index, previous_options
from indexer.search import Searcher
from indexer.swap import remove_dead_builds
from service.jobs import JobRunner
from service.settings import Settings

log = logging.getLogger(__name__)

_CARRIED: dict[str, tuple[type, ...]] = {
    "k": (int,), "latents": (int,), "epochs": (int,), "time_budget": (int, float), "faiss_factory": (str,),
    "limit": (int,), "seed": (int,),
}
"""Build options a rebuild carries over from the index it replaces, with the types a value must have."""


class AppState:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.jobs = JobRunner()
        self._searcher: Searcher | None = None
        self.load_error: str | None = None
        """Why the index directory could not be loaded at startup (None once an index is served)."""
        self._lock = threading.Lock()

    @property
    def searcher(self) -> Searcher:
        s = self._searcher
        if s is None:
            if self.load_error:
                raise IndexNotReady(f"no index loaded: {self.load_error} (POST /index/rebuild builds one while serving)")
            raise IndexNotReady(f"no index loaded from {self.settings.index_dir}; build one or start a rebuild")
        return s

    def load(self) -> None:
        """Load the index directory, if any; a missing index leaves the service up but not ready. First clear
        what a build killed while writing left beside it (a rebuild would, but none may come for a long time)."""
        try:
            remove_dead_builds(self.settings.index_dir.resolve())
            self.swap(load_index(self.settings.index_dir, verify=self.settings.verify_checksums))
        except (IndexNotReady, OSError) as exc:  # OSError: a path the file system refuses, a file it cannot read
            self.load_error = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
            log.warning("index not loaded: %s", self.load_error)
        except Exception as exc:  # noqa: BLE001 - e.g. a damaged file read without checksums: serve none, say why
            self.load_error = f"{self.settings.index_dir} could not be loaded ({type(exc).__name__}: {exc})"
            log.exception("index not loaded: %s", self.load_error)

    def swap(self, data: IndexData) -> None:
        """Serve `data` from now on; requests already running finish on the index they started with."""
        searcher = Searcher(data, self.settings.search_threads)
        with self._lock:
            self._searcher = searcher
            self.load_error = None
        # A full collection walks every object an index holds (0.47 s at 115k documents) and stalls every
        # request meanwhile: run it once here, then keep the loaded objects out of later ones (gc.freeze).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("index swapped in documents=%d features=%d", len(searcher.data.corpus), searcher.catalog.n_features)

    def _inside_data_dir(self, name: str) -> Path:
        if not self.settings.data_dir.is_dir():
            raise InvalidArgument(
                f"the server's data directory {self.settings.data_dir} (SAE_SEARCH_DATA_DIR) is not a directory, so "
                "no file can be named; leave the corpus out to use the configured one"
            )
        root = self.settings.data_dir.resolve()
        try:
            path = (root / name).resolve()
        except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system
            raise InvalidArgument(f"{name!r} is not a usable file name: {exc}") from None
        if not path.is_relative_to(root):
            raise InvalidArgument(f"{name!r} must lie inside the data directory {self.settings.data_dir}")
        if not path.is_file():
            raise InvalidArgument(f"{name!r} is not a file inside the data directory {self.settings.data_dir}")
        return path

    def rebuild_config(self, corpus: str | None, embeddings: str | None) -> BuildConfig:
        """Build settings for a rebuild: the request's files (checked to lie in the data directory) or the
        configured ones, plus the options of the index being replaced (`_CARRIED`; its document limit only when
        the rebuild reads the configured corpus)."""
        s = self.settings
        # None (not merely falsy) means "the configured file": a blank name must never rebuild from the default.
        if corpus is None:
            corpus_path = s.corpus
            if not corpus_path.is_file():
                raise InvalidArgument(f"the configured corpus {corpus_path} (SAE_SEARCH_CORPUS) is not a file; name one")
            detect_format(corpus_path)  # a file of another kind is refused now, not when the job reads it
        else:
            try:
                corpus_path = self._inside_data_dir(corpus)
                detect_format(corpus_path)
            except (InvalidArgument, CorpusError) as exc:
                raise located("corpus", exc) from None
        # The configured embeddings and the index's document limit belong to the configured corpus, also when a
        # request names that very file; another corpus is indexed whole.
        configured = corpus is None or corpus_path == s.corpus.resolve()
        emb_path = s.embeddings if configured else None
        if embeddings is not None:
            try:
                emb_path = self._inside_data_dir(embeddings)
            except InvalidArgument as exc:
                raise located("embeddings", exc) from None
        elif emb_path is not None and not emb_path.is_file():
            # Embedding the corpus with the model instead takes over an hour at 115k abstracts on a CPU.
            raise InvalidArgument(f"the configured embeddings {emb_path} (SAE_SEARCH_EMBEDDINGS) is not a file; "
                                  "name one, or set it blank for the model to embed the corpus")
        recorded = previous_options(s.index_dir, tuple(_CARRIED))
        carried = {k: v for k, v in recorded.items() if isinstance(v, _CARRIED[k]) and not isinstance(v, bool)}
        if len(carried) < len(recorded):
            log.warning("ignoring build options of the replaced index of the wrong type: %s",
                        {k: v for k, v in recorded.items() if k not in carried})
        if not configured:
            carried.pop("limit", None)
        given = dict(
            corpus=corpus_path, out=s.index_dir, embeddings=emb_path, model=s.model, device=s.device,
            llm_base_url=s.llm_base_url, llm_model=s.llm_model,
            llm_api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else "",
        )
        try:
            return BuildConfig(**given, **carried)
        except InvalidArgument as exc:
            # A hand-edited manifest ("k": -3): a rebuild is how such an index gets replaced, so it must not fail.
            log.warning("the replaced index's build options are not usable (%s); rebuilding with the defaults", exc)
            return BuildConfig(**given)

    def start_rebuild(self, corpus: str | None = None, embeddings: str | None = None) -> str:
        self.jobs.check_idle()  # 409 before the files are read: a second request must not touch the index's folder
        try:
            cfg = self.rebuild_config(corpus, embeddings)
        except OSError as exc:  # a name over the file system's limit, which pathlib raises as ENAMETOOLONG
            raise InvalidArgument(f"cannot use {os_error_text(exc)}") from None

        def run(on_stage: Callable[[str], None]) -> None:
            data = build_index(cfg, embedder=self.embedder, on_stage=on_stage)
            on_stage("swap")
            try:
                self.swap(data)
            except Exception as exc:
                raise SaeSearchError(
                    f"the new index was written to {cfg.out} but could not be loaded to serve ({type(exc).__name__}: "
                    f"{exc}); the old one is served until the server restarts, which loads the new one"
                ) from exc

        return self.jobs.submit(run).job_id
