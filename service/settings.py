"""Service configuration: one pydantic-settings object read from `SAE_SEARCH_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.query_encoder import Precision
from service.logs import LogLevel


class Settings(BaseSettings):
    """Built once in `create_app` and passed down."""

    model_config = SettingsConfigDict(env_prefix="SAE_SEARCH_", extra="ignore")

    index_dir: Path = Path("data/index")
    """Index directory to serve, and where rebuilds are written."""
    data_dir: Path = Path("data")
    """Corpus files named in a rebuild request must lie inside this directory."""
    corpus: Path = Path("data/demo_abstracts.parquet")
    """Corpus a rebuild uses when the request names none."""
    embeddings: Path | None = Path("data/demo_embeddings.npy")
    """Precomputed embeddings aligned with `corpus` (None: embed with the model)."""
    model: str | None = None
    """Sentence-transformers model directory; None = the packaged all-MiniLM-L6-v2."""
    admin_key: SecretStr | None = None
    """Bearer key for admin endpoints; with none set they answer 403."""
    verify_checksums: bool = True
    """Verify every index file's checksum when loading."""
    device: str = "auto"
    """'auto', 'cpu' or 'cuda' for the query embedder and rebuilds."""
    llm_base_url: str | None = None
    """OpenAI-compatible endpoint that names features during rebuilds; None uses TF-IDF names only."""
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    search_threads: int = Field(default=1, ge=1, le=256)
    """Threads of FAISS (per search) and of numpy's BLAS (for the whole process, rebuilds included) while
    serving; more only pays on big indexes with idle cores. At most 256: OpenMP dies creating tens of thousands."""
    query_cache: int = Field(default=1024, ge=0)
    """Recent query texts whose embeddings are kept (0: embed every query anew)."""
    query_precision: Precision = "auto"
    """Precision of the query embedder's matrices on the CPU (`indexer.query_encoder`): "auto" is bfloat16 where
    the CPU multiplies it natively (about half the time of float32 per query, at a cosine of about 0.99998 with
    it), else float32; "float32" gives the model's vectors to float rounding."""
    log_level: LogLevel = "INFO"

    @field_validator("corpus", "embeddings", "index_dir", "data_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, v: object, info: ValidationInfo) -> object:
        # `SAE_SEARCH_CORPUS=` would otherwise be Path(""), the working directory, and fail only inside a job. A
        # blank EMBEDDINGS means none (embed with the model); the others fall back to their defaults.
        if isinstance(v, str) and not v.strip():
            return None if info.field_name == "embeddings" else cls.model_fields[info.field_name].default
        return v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v
