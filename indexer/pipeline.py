"""`sae-search build`: corpus -> embeddings -> SAE -> codes -> names -> families -> concepts -> FAISS -> artifacts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from indexer.artifacts import IndexData, check_out, write_index
from indexer.codes import SparseCodes, feature_stats, invert
from indexer.concepts import ConceptConfig, build_concepts
from indexer.config import BuildConfig
from indexer.corpus import Corpus, CorpusReport, load_corpus
from indexer.embed import Embedder, unit_rows
from indexer.errors import IndexNotReady, InvalidArgument, TrainingDiverged
from indexer.families import FamilyConfig, build_families
from indexer.index import build_faiss, check_factory
from indexer.llm_names import LlmConfig, llm_name_features
from indexer.manifest import read_manifest, sha256_file, verify_index
from indexer.names import NamingConfig, name_features
from indexer.precomputed import check_precomputed, load_embeddings_file
from indexer.sae import encode_array
from indexer.tables import parquet_row_count
from indexer.terms import build_term_matrix
from indexer.train import TrainConfig, train_sae

log = logging.getLogger(__name__)

StageCallback = Callable[[str], None]


def _fingerprint(cfg: BuildConfig, corpus_sha: str) -> dict[str, Any]:
    """What decides whether an existing index is still current."""
    emb_sha = sha256_file(cfg.embeddings) if cfg.embeddings else None
    skip = ("corpus", "out", "embeddings", "device", "llm_api_key")
    settings = {k: v for k, v in asdict(cfg).items() if k not in skip}
    return {"corpus_sha256": corpus_sha, "embeddings_sha256": emb_sha, "settings": settings}


def previous_options(out: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The build options `names` that made the index at `out` (those its fingerprint records); {} when there is no
    readable index there. A rebuild keeps them, so that it makes the same kind of index from the new files."""
    try:
        fingerprint = read_manifest(out).get("fingerprint")
    except IndexNotReady:
        return {}
    settings = fingerprint.get("settings") if isinstance(fingerprint, dict) else None
    return {k: settings[k] for k in names if k in settings} if isinstance(settings, dict) else {}


def is_current(cfg: BuildConfig) -> bool:
    """True when `cfg.out` holds an index that verifies (this format, every file's checksum) and was built from the
    same corpus, embeddings and settings: a damaged index is stale, or `make run` would serve nothing."""
    try:
        manifest = verify_index(cfg.out)
    except IndexNotReady:  # CorruptIndex too
        return False
    corpus_sha = sha256_file(cfg.corpus) if cfg.corpus.is_file() else None
    return manifest.get("fingerprint") == _fingerprint(cfg, corpus_sha or "")


def _file_rows(cfg: BuildConfig, report: CorpusReport) -> int | None:
    """Records in the corpus file, or None when `limit` may have stopped reading before its end of a text format
    (a Parquet file's footer holds its count)."""
    if cfg.limit is None or report.rows_used < cfg.limit:
        return report.rows_read
    return parquet_row_count(cfg.corpus) if report.format == "parquet" else None


def _embeddings(
    cfg: BuildConfig, embedder: Embedder, corpus: Corpus, raw: np.ndarray | None, file_rows: int | None
) -> tuple[np.ndarray, dict]:
    """The corpus's (n, d) float32 unit embeddings: computed, or taken from `raw`, the memory-mapped
    `cfg.embeddings` file (rows of the corpus file), once its rows are checked against the file and the model."""
    texts, source_rows = corpus.texts(), corpus.source_rows
    if raw is None:
        emb = embedder.embed(texts, progress=True)
        return emb, {"source": "computed"}
    if raw.ndim != 2:
        raise InvalidArgument(f"{cfg.embeddings}: embeddings must be 2-D (rows, dim), got shape {raw.shape}")
    if file_rows is not None and len(raw) != file_rows:
        # Extra rows pass the spot check (it reads only the corpus's rows) but say the file was made for another corpus.
        raise InvalidArgument(
            f"{cfg.embeddings} has {len(raw)} rows but the corpus file has {file_rows}; "
            "embeddings must be aligned with the corpus file's rows"
        )
    if len(raw) <= int(source_rows.max(initial=0)):
        raise InvalidArgument(
            f"{cfg.embeddings} has {len(raw)} rows but the corpus file has at least {int(source_rows.max()) + 1}; "
            "embeddings must be aligned with the corpus file's rows"
        )
    emb = np.asarray(raw[source_rows], dtype=np.float32)
    min_cos = check_precomputed(embedder, texts, emb, n_check=cfg.check_rows, seed=cfg.seed, ids=corpus.ids)
    checked = {"source": str(cfg.embeddings), "checked_rows": cfg.check_rows, "min_cosine": round(min_cos, 5)}
    return unit_rows(emb), checked


BUILD_STAGES = ("inputs", "corpus", "embeddings", "faiss", "sae", "codes", "names", "families", "concepts", "write")
"""The stages `build_index` reports to `on_stage`, in order."""


def build_index(cfg: BuildConfig, embedder: Embedder | None = None, on_stage: StageCallback | None = None) -> IndexData:
    """Run every stage and write the index to `cfg.out` atomically. `on_stage` hears each stage's name."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if timings:
            timings[list(timings)[-1]] = round(now - clock, 3)
        clock = now
        timings[name] = 0.0
        log.info("build stage=%s", name)
        if on_stage:
            on_stage(name)

    stage("inputs")  # a job that fails here says so, not "no stage"
    check_out(cfg.out)  # before minutes of work, not after
    # A memory map, so cheap: a bad file is refused before the corpus and the model load.
    raw = load_embeddings_file(cfg.embeddings) if cfg.embeddings is not None else None
    stage("corpus")
    corpus, report = load_corpus(cfg.corpus, limit=cfg.limit)
    corpus_sha = sha256_file(cfg.corpus)

    stage("embeddings")
    embedder = embedder or Embedder(cfg.model, device=cfg.device)
    check_factory(cfg.faiss_factory, embedder.dim)  # before the corpus is embedded, which can take minutes
    texts = corpus.texts()
    emb, emb_info = _embeddings(cfg, embedder, corpus, raw, _file_rows(cfg, report))

    # The dense index needs only the embeddings: built now, a type that cannot index these rows (IVF1024 on 300
    # rows) fails before the SAE trains, not after.
    stage("faiss")
    faiss_index = build_faiss(emb, cfg.faiss_factory)

    stage("sae")
    latents = cfg.latents_for(len(corpus))
    tcfg = TrainConfig(k=cfg.k, latents=latents, seed=cfg.seed, time_budget=cfg.time_budget, device=cfg.device,
                       epochs=cfg.epochs)
    try:
        trained = train_sae(emb, tcfg)
    except TrainingDiverged as exc:
        raise TrainingDiverged(exc.what, exc.lr, "no index was written") from None
    sae = trained.sae

    stage("codes")
    idx, val = encode_array(sae, emb)
    codes = SparseCodes(indices=idx, values=val, n_features=sae.n)
    inv = invert(codes)
    stats = feature_stats(inv, len(corpus))

    stage("names")
    naming = NamingConfig(seed=cfg.seed)
    terms = build_term_matrix(texts, naming.min_df)
    names = name_features(texts, inv, stats, naming, terms=terms)
    if cfg.llm_base_url:
        llm = LlmConfig(
            base_url=cfg.llm_base_url, model=cfg.llm_model or "", api_key=cfg.llm_api_key,
            cache_path=cfg.out.parent / f"{cfg.out.name}.llm-names.json", seed=cfg.seed,
        )
        names = llm_name_features(texts, inv, names, llm, naming, terms=terms)

    stage("families")
    families = build_families(codes, stats, sae.weights_numpy()["W_dec"], names, FamilyConfig())

    stage("concepts")
    concepts = build_concepts(texts, codes, emb, ConceptConfig(), terms=terms)

    stage("write")
    timings.pop("write")  # the manifest is part of the write, so it cannot time it
    live = int((stats.density > 0).sum())
    info = {
        "corpus": {"path": str(cfg.corpus), "sha256": corpus_sha, **{k: v for k, v in vars(report).items() if k != "path"}},
        "documents": len(corpus),
        "model": {"name": embedder.name, "dim": int(emb.shape[1])},
        "embeddings": emb_info,
        "sae": {"k": sae.k, "d": sae.d, "n": sae.n, "metrics": trained.metrics},
        "features": {"total": sae.n, "live": live, "families": len(families.names)},
        "faiss": {"type": cfg.faiss_factory, "metric": "inner_product", "ntotal": int(faiss_index.ntotal)},
        "fingerprint": _fingerprint(cfg, corpus_sha),
        "timings_s": timings,
    }
    data = IndexData(
        corpus=corpus, embeddings=emb, faiss_index=faiss_index, sae=sae, codes=codes, inv=inv, stats=stats,
        names=names, families=families, manifest={"sae": info["sae"]}, concepts=concepts,
    )
    write_index(data, cfg.out, info)
    return data
