"""An index directory's manifest: read it, check its shape, and verify every file the loader reads against it.

The manifest is the index's only proof of integrity, so a manifest of the wrong shape (not an object, `files`
not a map of names to checksums, a file the loader reads left out of it, a name outside the directory) counts
as damage, never as "nothing to check"."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

from indexer.errors import CorruptIndex, IndexNotReady
from indexer.swap import recover_swap

FORMAT_VERSION = 4
MANIFEST = "manifest.json"
REQUIRED_FILES = (
    "docs.parquet", "embeddings.npy", "dense.faiss", "sae/sae.safetensors", "sae/sae.json", "codes.parquet",
    "inverted.npz", "features.parquet", "families.parquet",
)
"""Files every index holds; concepts.parquet and concepts.npz are optional but checked when present."""
OPTIONAL_FILES = ("concepts.parquet", "concepts.npz")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of an index directory (after `recover_swap`); IndexNotReady when there is none, CorruptIndex
    when it is not a JSON object."""
    recover_swap(Path(path), MANIFEST)
    p = Path(path) / MANIFEST
    if not p.is_file():
        raise IndexNotReady(f"no index at {Path(path)} (no {MANIFEST}); build one with `sae-search build`")
    try:
        manifest = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptIndex(f"{p} is not valid JSON ({exc.msg}); rebuild the index") from None
    except UnicodeDecodeError:
        raise CorruptIndex(f"{p} is not valid JSON (not UTF-8); rebuild the index") from None
    except RecursionError:
        raise CorruptIndex(f"{p} is not valid JSON (nested too deeply); rebuild the index") from None
    if not isinstance(manifest, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(manifest), "a number")
        raise CorruptIndex(f"{p} holds {kind}, not a JSON object; rebuild the index")
    return manifest


def _checked_files(root: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's `files` map, refused unless it names each file the loader reads, inside `root`."""
    files = manifest.get("files")
    damaged = f"index at {root}: {MANIFEST}"
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise CorruptIndex(f"{damaged} has no map of file names to checksums; rebuild it")
    for name in files:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise CorruptIndex(f"{damaged} lists {name!r}, which is not a file inside the index; rebuild it")
    present = [n for n in OPTIONAL_FILES if (root / n).exists()]
    for name in (*REQUIRED_FILES, *present):
        if name not in files:
            raise CorruptIndex(f"{damaged} has no checksum for {name}; rebuild it")
    return files


def verify_index(path: str | Path) -> dict[str, Any]:
    """Check the manifest's shape, the format version and the checksum of every listed file; returns the
    manifest. CorruptIndex (an IndexNotReady) says what is wrong."""
    root = Path(path)
    manifest = read_manifest(root)
    if "format_version" not in manifest:
        raise CorruptIndex(f"index at {root} has no format_version in its manifest, expected {FORMAT_VERSION}; rebuild it")
    version = manifest["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise CorruptIndex(f"index at {root} has format {json.dumps(version)}, expected {FORMAT_VERSION}; rebuild it")
    if not isinstance(manifest.get("created_at"), str):
        raise CorruptIndex(f"index at {root}: {MANIFEST} has no created_at text; rebuild it")
    for name, digest in _checked_files(root, manifest).items():
        f = root / name
        if not f.is_file():
            raise CorruptIndex(f"index at {root} is missing {name}; rebuild it")
        if sha256_file(f) != digest:
            raise CorruptIndex(f"index at {root}: {name} does not match its checksum; rebuild it")
    return manifest
