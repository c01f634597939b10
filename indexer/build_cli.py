"""`sae-search build`: argument parsing for the pipeline."""

from __future__ import annotations

import argparse
import logging
import os

from indexer.config import BuildConfig, check_llm
from indexer.errors import InvalidArgument, UsageError
from indexer.train_config import DEVICES

log = logging.getLogger(__name__)


def add_build_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build an index directory from a corpus file")
    p.add_argument("--corpus", required=True, help="Parquet, JSONL (also the arXiv snapshot) or CSV file")
    p.add_argument("--out", required=True, help="index directory to create or replace atomically")
    p.add_argument("--embeddings", help="precomputed .npy aligned with the corpus file's rows (spot-checked)")
    p.add_argument("--model", help="sentence-transformers model directory (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--k", type=int, default=32, help="active SAE latents per document (default 32)")
    p.add_argument("--latents", type=int, help="SAE latents (default: from corpus size, 256..6144)")
    p.add_argument("--epochs", type=int, help="SAE training epochs (default: the trainer's)")
    p.add_argument("--time-budget", type=float, help="seconds allowed for SAE training")
    p.add_argument(
        "--faiss", default=BuildConfig.faiss_factory,
        help="FAISS index_factory string, inner product (default SQfp16: float16 rows, results rescored exactly)",
    )
    p.add_argument("--limit", type=int, help="use only the first N usable rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--if-stale", action="store_true", help="skip the build when OUT is current for these inputs")
    p.set_defaults(handler=run_build)


def llm_from_env() -> dict[str, str | None]:
    """Optional LLM naming, configured like the service's, from `SAE_SEARCH_LLM_*`: checked here, so that a bad
    setting is one (exit 1), not a bad command line (exit 2)."""
    llm = {
        "llm_base_url": os.environ.get("SAE_SEARCH_LLM_BASE_URL") or None,
        "llm_model": os.environ.get("SAE_SEARCH_LLM_MODEL") or None,
        "llm_api_key": os.environ.get("SAE_SEARCH_LLM_API_KEY", ""),
    }
    try:
        check_llm(llm["llm_base_url"], llm["llm_model"])
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid setting: SAE_SEARCH_LLM_BASE_URL: {exc}") from None
    return llm


def config_from_args(args: argparse.Namespace, llm: dict[str, str | None]) -> BuildConfig:
    return BuildConfig(
        corpus=args.corpus, out=args.out, embeddings=args.embeddings, model=args.model, k=args.k,
        latents=args.latents, epochs=args.epochs, time_budget=args.time_budget, faiss_factory=args.faiss,
        limit=args.limit, seed=args.seed, device=args.device, **llm,
    )


def run_build(args: argparse.Namespace) -> int:
    from indexer.pipeline import build_index, is_current  # torch and the model's libraries: not for `--help`

    llm = llm_from_env()
    try:
        cfg = config_from_args(args, llm)
    except InvalidArgument as exc:  # a value given to the command, refused before any work
        raise UsageError(str(exc)) from None
    if args.if_stale and is_current(cfg):
        log.info("index is current, nothing to do path=%s", cfg.out)
        return 0
    data = build_index(cfg)
    m = data.manifest
    metrics = m["sae"]["metrics"]
    # Under 1,280 rows no validation slice is held out (train._split): the training NMSE is all there is.
    held_out = metrics.get("val_nmse") is not None
    nmse = ("sae_val_nmse", metrics["val_nmse"]) if held_out else ("sae_train_nmse", metrics.get("train_nmse"))
    log.info(
        "built path=%s documents=%d features=%d live=%d families=%d %s=%s",
        cfg.out, m["documents"], m["features"]["total"], m["features"]["live"], m["features"]["families"], *nmse,
    )
    return 0
