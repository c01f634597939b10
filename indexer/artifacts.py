"""The on-disk index: one directory per build, written beside its destination and moved into place by
rename, with a manifest that records provenance and a checksum of every file.

Layout: manifest.json, docs.parquet, embeddings.npy, dense.faiss, sae/sae.{safetensors,json},
codes.parquet (top-k per document), inverted.npz (feature -> documents), features.parquet, families.parquet,
concepts.parquet + concepts.npz (word-feature agreement, probes and concept-term postings, indexer/concepts.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa

from indexer.codes import FeatureStats, InvertedLists, SparseCodes, feature_stats
from indexer.concepts import Concepts
from indexer.corpus import Corpus, corpus_from_table
from indexer.corpus_files import one_line
from indexer.errors import CorruptIndex, InvalidArgument
from indexer.families import Families
from indexer.index import load_faiss, save_faiss
from indexer.manifest import FORMAT_VERSION, MANIFEST, read_manifest, sha256_file, verify_index
from indexer.names import FeatureNames
from indexer.sae import TopKSae, load_sae, save_sae
from indexer.swap import (
    build_dir, check_can_create, check_name_room, recover_swap, remove_dead_builds, swap_into_place,
)
from indexer.tables import read_parquet, write_parquet

log = logging.getLogger(__name__)

CONCEPT_ARRAYS = ("probe_term", "probes", "mean", "word_indptr", "word_docs")
"""Fields of `Concepts` stored in concepts.npz; the term table goes to concepts.parquet."""


@dataclass
class IndexData:
    """Everything a search needs, in memory. Built by the pipeline or read back by `load_index`."""

    corpus: Corpus
    embeddings: np.ndarray
    """(n_docs, d) float32 unit rows."""
    faiss_index: faiss.Index
    sae: TopKSae
    codes: SparseCodes
    inv: InvertedLists
    stats: FeatureStats
    names: FeatureNames
    families: Families
    manifest: dict[str, Any] = field(default_factory=dict)
    concepts: Concepts | None = None
    """Word-feature agreement and probes; None until computed (the catalog computes missing ones on load)."""


def _features_table(names: FeatureNames, stats: FeatureStats, fam: Families) -> pa.Table:
    n = len(names.names)
    return pa.table(
        {
            "id": pa.array(np.arange(n, dtype=np.int32)),
            "name": names.names,
            "description": names.descriptions,
            "terms": pa.array(names.terms, type=pa.list_(pa.string())),
            "trust": pa.array(names.trust.astype(np.float32)),
            "status": names.status,
            "density": pa.array(stats.density),
            "p90": pa.array(stats.p90),
            "max_activation": pa.array(stats.max_activation),
            "family": pa.array(fam.feature_family.astype(np.int32)),
            "neighbors": pa.array(list(fam.neighbors.astype(np.int32)), type=pa.list_(pa.int32())),
            "neighbor_sims": pa.array(list(fam.neighbor_sims.astype(np.float32)), type=pa.list_(pa.float32())),
            "cooccurring": pa.array(list(fam.cooccurring.astype(np.int32)), type=pa.list_(pa.int32())),
            "cooccur_counts": pa.array(list(fam.cooccur_counts.astype(np.int32)), type=pa.list_(pa.int32())),
        }
    )


def _families_table(fam: Families) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(np.arange(len(fam.names), dtype=np.int32)),
            "name": fam.names,
            "parent": pa.array(fam.parent.astype(np.int32)),
            "children": pa.array([c.astype(np.int32) for c in fam.children], type=pa.list_(pa.int32())),
        }
    )


def _codes_table(corpus: Corpus, codes: SparseCodes) -> pa.Table:
    return pa.table(
        {
            "id": corpus.ids,
            "features": pa.array(list(codes.indices), type=pa.list_(pa.int32())),
            "activations": pa.array(list(codes.values), type=pa.list_(pa.float32())),
        }
    )


def concepts_table(c: Concepts) -> pa.Table:
    """The term rows of `c` as an Arrow table (written as concepts.parquet; pads dropped)."""
    valid = c.features >= 0
    return pa.table(
        {
            "term": c.terms,
            "df": pa.array(c.df.astype(np.int32)),
            "features": pa.array([f[v] for f, v in zip(c.features, valid)], type=pa.list_(pa.int32())),
            "precision": pa.array([p[v] for p, v in zip(c.precision, valid)], type=pa.list_(pa.float32())),
            "recall": pa.array([r[v] for r, v in zip(c.recall, valid)], type=pa.list_(pa.float32())),
        }
    )


def concepts_from_table(table: pa.Table, arrays: dict[str, np.ndarray]) -> Concepts:
    """Inverse of `concepts_table`, with the `CONCEPT_ARRAYS` stored beside it."""
    lists = [table[c].combine_chunks() for c in ("features", "precision", "recall")]
    lengths = np.diff(lists[0].offsets.to_numpy())
    m = int(lengths.max(initial=0))
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = []
    for arr, fill, dtype in zip(lists, (-1, 0.0, 0.0), (np.int32, np.float32, np.float32)):
        dense = np.full((len(lengths), m), fill, dtype=dtype)
        dense[rows, cols] = arr.values.to_numpy(zero_copy_only=False)
        out.append(dense)
    return Concepts(
        terms=table["term"].to_pylist(), df=table["df"].to_numpy().astype(np.int32), features=out[0], precision=out[1],
        recall=out[2], probe_term=arrays["probe_term"].astype(np.int32), probes=arrays["probes"].astype(np.float32),
        mean=arrays["mean"].astype(np.float32), word_indptr=arrays["word_indptr"].astype(np.int64),
        word_docs=arrays["word_docs"].astype(np.int32),
    )


def _stack(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A list column of equal-length lists -> (rows, width) array."""
    flat = column.combine_chunks()
    width = len(flat[0]) if len(flat) else 0
    return flat.values.to_numpy(zero_copy_only=False).astype(dtype).reshape(len(flat), width)


def check_out(out: str | Path) -> None:
    """Refuse an output path that holds something other than an index: a build replaces `out` whole, and a user's
    folder (or the project root, or the corpus's own folder) must not be swept away with an old index's files."""
    out = Path(out)
    check_name_room(out)
    # Anything but a directory is refused: a device or a pipe too (`--out /dev/null` moved the device aside).
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        kind = "a file" if out.is_file() else "not a directory"
        raise InvalidArgument(f"{out} is {kind}; give a directory for the index (new, empty, or an earlier index)")
    # The build writes beside `out`, so it is its parent that must take a new directory.
    check_can_create(out.parent, f"the index {out}")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise InvalidArgument(
            f"{out} holds other files and is not an index (no {MANIFEST}); a build replaces its output directory "
            "whole, so give a new or empty directory"
        )


def write_index(data: IndexData, out: str | Path, info: dict[str, Any]) -> Path:
    """Write `data` to a fresh sibling directory, then rename it onto `out` (replacing an old build; `check_out`
    refuses anything else). A reader never sees a half-written index: the manifest is written last and verified
    on load."""
    out = Path(out).resolve()
    recover_swap(out, MANIFEST)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_builds(out)
    with build_dir(out) as tmp:
        write_parquet(data.corpus.to_table(), tmp / "docs.parquet")
        np.save(tmp / "embeddings.npy", np.ascontiguousarray(data.embeddings, dtype=np.float32))
        save_faiss(data.faiss_index, tmp / "dense.faiss")
        save_sae(data.sae, tmp / "sae", data.manifest.get("sae", {}).get("metrics"))
        write_parquet(_codes_table(data.corpus, data.codes), tmp / "codes.parquet")
        np.savez(tmp / "inverted.npz", indptr=data.inv.indptr, doc_ids=data.inv.doc_ids, values=data.inv.values)
        write_parquet(_features_table(data.names, data.stats, data.families), tmp / "features.parquet")
        write_parquet(_families_table(data.families), tmp / "families.parquet")
        if data.concepts is not None:
            c = data.concepts
            write_parquet(concepts_table(c), tmp / "concepts.parquet")
            np.savez(tmp / "concepts.npz", **{a: getattr(c, a) for a in CONCEPT_ARRAYS})
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **info,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        swap_into_place(tmp, out)
    data.manifest = manifest
    log.info("index written path=%s documents=%d files=%d", out, len(data.corpus), len(files))
    return out


def load_index(path: str | Path, verify: bool = True) -> IndexData:
    """Read an index directory written by `write_index`; CorruptIndex when it does not verify or cannot be read."""
    root = Path(path)
    manifest = verify_index(root) if verify else read_manifest(root)
    try:
        return _read_index(root, manifest)
    except Exception as exc:  # unverified files can fail in any reader (FAISS, Arrow, numpy, safetensors)
        raise CorruptIndex(f"index at {root} cannot be read ({one_line(exc)}); rebuild it") from exc


def _read_index(root: Path, manifest: dict[str, Any]) -> IndexData:
    corpus = corpus_from_table(read_parquet(root / "docs.parquet"))
    embeddings = np.load(root / "embeddings.npy")
    sae, _ = load_sae(root / "sae")
    codes_t = read_parquet(root / "codes.parquet", columns=["features", "activations"])
    codes = SparseCodes(
        indices=_stack(codes_t["features"], np.int32), values=_stack(codes_t["activations"], np.float32), n_features=sae.n
    )
    with np.load(root / "inverted.npz") as z:
        inv = InvertedLists(indptr=z["indptr"], doc_ids=z["doc_ids"], values=z["values"])
    ft = read_parquet(root / "features.parquet")
    # features.parquet's density, p90 and max_activation columns are for people reading the file; the loader
    # derives them from the postings again, so the two can never disagree.
    stats = feature_stats(inv, len(corpus))
    names = FeatureNames(
        names=ft["name"].to_pylist(),
        descriptions=ft["description"].to_pylist(),
        terms=ft["terms"].to_pylist(),
        trust=ft["trust"].to_numpy().astype(np.float32),
        status=ft["status"].to_pylist(),
    )
    fmt = read_parquet(root / "families.parquet")
    families = Families(
        parent=fmt["parent"].to_numpy().astype(np.int32),
        children=[np.asarray(c, dtype=np.int32) for c in fmt["children"].to_pylist()],
        names=fmt["name"].to_pylist(),
        feature_family=ft["family"].to_numpy().astype(np.int32),
        neighbors=_stack(ft["neighbors"], np.int32),
        neighbor_sims=_stack(ft["neighbor_sims"], np.float32),
        cooccurring=_stack(ft["cooccurring"], np.int32),
        cooccur_counts=_stack(ft["cooccur_counts"], np.int32),
    )
    concepts = None
    if (root / "concepts.parquet").is_file() and (root / "concepts.npz").is_file():
        with np.load(root / "concepts.npz") as z:
            concepts = concepts_from_table(read_parquet(root / "concepts.parquet"), {a: z[a] for a in CONCEPT_ARRAYS})
    data = IndexData(
        corpus=corpus, embeddings=embeddings, faiss_index=load_faiss(root / "dense.faiss"), sae=sae, codes=codes,
        inv=inv, stats=stats, names=names, families=families, manifest=manifest, concepts=concepts,
    )
    _check_sizes(data)
    return data


def _check_sizes(data: IndexData) -> None:
    """Refuse files that read but do not fit together: what checksums would catch, for an index loaded without
    them (a table cut short still reads, and searches then failed on a missing row)."""
    docs = {"the manifest": data.manifest.get("documents"), "docs.parquet": len(data.corpus),
            "embeddings.npy": len(data.embeddings), "codes.parquet": data.codes.n_docs,
            "dense.faiss": data.faiss_index.ntotal}
    features = {"the SAE": data.sae.n, "features.parquet": len(data.names.names), "the postings": data.inv.n_features}
    if docs["the manifest"] is None:  # an index written by hand (`write_index` alone) records no count
        del docs["the manifest"]
    for what, sizes in (("documents", docs), ("features", features)):
        if len(set(sizes.values())) > 1:
            raise ValueError(f"its files disagree on the number of {what}: "
                             + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if not np.isfinite(data.embeddings).all():
        raise ValueError("embeddings.npy holds values that are not finite numbers")
