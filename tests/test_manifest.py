"""indexer.manifest: a manifest of the wrong shape is damage, and a damaged index is refused with a CorruptIndex
that says why (never an AttributeError, or a reader's error from a file nothing checked)."""

import json

import pytest

from indexer.artifacts import load_index, write_index
from indexer.errors import CorruptIndex
from indexer.manifest import FORMAT_VERSION, MANIFEST, OPTIONAL_FILES, REQUIRED_FILES, verify_index


@pytest.fixture
def index_dir(tmp_path, tiny_index):
    return write_index(tiny_index, tmp_path / "idx", {})


def edit_manifest(root, edit):
    path = root / MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(edit(manifest)))


def test_a_written_index_verifies(index_dir):
    assert verify_index(index_dir)["format_version"] == FORMAT_VERSION


def _drop(key):
    return lambda m: {k: v for k, v in m.items() if k != key}


def _drop_file(name):
    return lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != name}}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: [1, 2], "holds an array, not a JSON object"),
        (lambda m: None, "holds null, not a JSON object"),
        (lambda m: 7, "holds a number, not a JSON object"),
        (lambda m: {**m, "files": list(m["files"])}, "no map of file names to checksums"),
        (lambda m: {**m, "files": "abc"}, "no map of file names to checksums"),
        (lambda m: {**m, "files": {**m["files"], "dense.faiss": 7}}, "no map of file names to checksums"),
        (_drop("files"), "no map of file names to checksums"),
        (_drop_file("dense.faiss"), "no checksum for dense.faiss"),
        (_drop_file("sae/sae.json"), "no checksum for sae/sae.json"),
        (lambda m: {**m, "files": {**m["files"], "../idx/manifest.json": "0"}}, "not a file inside the index"),
        (lambda m: {**m, "files": {**m["files"], "/etc/hostname": "0"}}, "not a file inside the index"),
        (lambda m: {**m, "format_version": str(FORMAT_VERSION)}, f'has format "{FORMAT_VERSION}", expected'),
        (lambda m: {**m, "created_at": 12345}, "no created_at"),
        (_drop("format_version"), "has no format_version in its manifest, expected"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused_saying_why(index_dir, edit, message):
    edit_manifest(index_dir, edit)
    with pytest.raises(CorruptIndex, match=message) as info:
        load_index(index_dir)
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_json_text_is_refused(index_dir):
    (index_dir / MANIFEST).write_bytes(b"\xff\xfe not json")
    with pytest.raises(CorruptIndex, match="not valid JSON"):
        verify_index(index_dir)


def test_unverified_loading_of_a_damaged_file_is_a_corrupt_index(index_dir):
    # With checksums off (SAE_SEARCH_VERIFY_CHECKSUMS=false) the readers meet the damage themselves.
    (index_dir / "dense.faiss").write_bytes(b"")
    with pytest.raises(CorruptIndex, match="dense.faiss|cannot be read"):
        load_index(index_dir, verify=False)


def test_optional_concept_files_must_be_listed_when_present(tmp_path, tiny_index, concepts):
    from dataclasses import replace

    root = write_index(replace(tiny_index, concepts=concepts), tmp_path / "idx", {})
    assert load_index(root).concepts is not None
    # The lists the check reads are the files the writer writes: neither may drift from the other.
    assert set(json.loads((root / MANIFEST).read_text())["files"]) == {*REQUIRED_FILES, *OPTIONAL_FILES}
    edit_manifest(root, _drop_file("concepts.npz"))
    with pytest.raises(CorruptIndex, match="no checksum for concepts.npz"):
        load_index(root)
