"""Flat configuration of an index build (`sae-search build`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from indexer.errors import InvalidArgument
from indexer.index import DEFAULT_FACTORY, check_factory
from indexer.train_config import check_device, check_seed, check_time_budget


@dataclass
class BuildConfig:
    """Everything a build needs; the CLI and the rebuild endpoint fill it."""

    corpus: Path
    """Corpus file: Parquet, JSONL (also the arXiv snapshot) or CSV."""
    out: Path
    """Index directory to create or replace atomically."""
    embeddings: Path | None = None
    """Optional precomputed (rows, d) .npy aligned with the corpus file's rows; spot-checked against the model."""
    model: str | None = None
    """Sentence-transformers model directory; None = the packaged all-MiniLM-L6-v2."""
    k: int = 32
    """Active SAE latents per document."""
    latents: int | None = None
    """SAE latents; None picks one from the corpus size (`latents_for`: about rows / 4 as a power of two from 256 to
    4096, 6144 from 60,000 rows, and at least 2k)."""
    epochs: int | None = None
    """SAE training epochs; None uses the trainer's default."""
    time_budget: float | None = None
    """Seconds allowed for SAE training; None means no limit."""
    faiss_factory: str = DEFAULT_FACTORY
    """FAISS index_factory string (inner product metric). "SQfp16" (rows stored in float16, rescored exactly)
    and "Flat" give exact results; approximate types such as "HNSW32" may miss neighbours."""
    limit: int | None = None
    """Use only the first `limit` usable corpus rows (for quick builds)."""
    check_rows: int = 8
    """Rows of precomputed embeddings re-embedded and compared with the model."""
    seed: int = 0
    """Seed for SAE training and sampling."""
    device: str = "auto"
    """'auto', 'cpu' or 'cuda' for embedding and training."""
    llm_base_url: str | None = None
    """OpenAI-compatible endpoint that names features instead of TF-IDF terms; None (default) uses no LLM."""
    llm_model: str | None = None
    """Model asked at `llm_base_url`."""
    llm_api_key: str = ""
    """Bearer key for `llm_base_url` (never written to the manifest)."""

    def __post_init__(self) -> None:
        self.corpus, self.out = Path(self.corpus), Path(self.out)
        if self.embeddings is not None:
            self.embeddings = Path(self.embeddings)
        if self.k < 1:
            raise InvalidArgument(f"k must be >= 1, got {self.k}")
        check_seed(self.seed)
        if self.latents is not None and self.latents <= self.k:
            raise InvalidArgument(f"latents must be greater than k, got latents={self.latents}, k={self.k}")
        if self.epochs is not None and self.epochs < 1:
            raise InvalidArgument(f"epochs must be >= 1, got {self.epochs}")
        check_time_budget(self.time_budget)  # TrainConfig checks it too, but only once the embeddings are made
        if self.limit is not None and self.limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {self.limit}")
        check_llm(self.llm_base_url, self.llm_model)
        check_device(self.device)
        check_factory(self.faiss_factory)  # the rest of its check needs the model's dimension (build_index)

    def latents_for(self, n_docs: int) -> int:
        """Dictionary size for a corpus of `n_docs` rows."""
        if self.latents is not None:
            return self.latents
        size = 256
        while size * 2 <= n_docs / 4 and size < 4096:
            size *= 2
        size = 6144 if n_docs >= 60_000 else size
        return max(size, 2 * self.k)


def check_llm(base_url: str | None, model: str | None) -> None:
    """Refuse an LLM endpoint that a build could not ask, before the build's minutes of work reach naming. No
    endpoint (None or "") is fine: names then come from TF-IDF alone. The one check of `llm_names.LlmConfig` too."""
    if not base_url:
        return
    try:
        parts = urlsplit(base_url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is no number, a malformed IPv6 address
        usable = False
    if not usable or any(c.isspace() or not c.isprintable() for c in base_url):
        raise InvalidArgument(f"the LLM endpoint must be an http:// or https:// address with a host, got {base_url!r}")
    if not (model or "").strip():
        raise InvalidArgument("an LLM endpoint needs a model name (SAE_SEARCH_LLM_MODEL)")
