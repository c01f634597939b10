import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import indexer.artifacts as artifacts
from indexer.artifacts import (
    CONCEPT_ARRAYS, MANIFEST, check_out, concepts_from_table, concepts_table, load_index, write_index,
)
from indexer.concepts import build_concepts
from indexer.errors import CorruptIndex, IndexNotReady, InvalidArgument
from tests.conftest import leftovers


def assert_same_arrays(a, b, fields):
    for f in fields:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


def test_round_trip_is_exact(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {"documents": len(tiny_index.corpus)})
    back = load_index(out)
    np.testing.assert_array_equal(back.embeddings, tiny_index.embeddings)
    assert_same_arrays(back.codes, tiny_index.codes, ("indices", "values"))
    assert_same_arrays(back.inv, tiny_index.inv, ("indptr", "doc_ids", "values"))
    assert_same_arrays(back.stats, tiny_index.stats, ("density", "p90", "max_activation"))
    assert_same_arrays(back.names, tiny_index.names, ("names", "descriptions", "terms", "trust", "status"))
    assert_same_arrays(back.families, tiny_index.families, ("parent", "names", "feature_family", "neighbors"))
    assert [c.tolist() for c in back.families.children] == [c.tolist() for c in tiny_index.families.children]
    assert_same_arrays(back.concepts, tiny_index.concepts, ("terms", "df", "features") + CONCEPT_ARRAYS)
    for name, t in tiny_index.sae.state_dict().items():
        np.testing.assert_array_equal(back.sae.state_dict()[name].numpy(), t.numpy(), err_msg=name)
    q = tiny_index.embeddings[:3]
    np.testing.assert_array_equal(back.faiss_index.search(q, 5)[1], tiny_index.faiss_index.search(q, 5)[1])
    assert back.corpus.to_table().equals(tiny_index.corpus.to_table())
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format_version"] == artifacts.FORMAT_VERSION
    assert set(manifest["files"]) >= {"docs.parquet", "dense.faiss", "sae/sae.safetensors", "codes.parquet",
                                      "concepts.parquet", "concepts.npz"}
    assert leftovers(tmp_path) == []


def test_missing_and_corrupt_indexes_are_refused(tmp_path, tiny_index):
    with pytest.raises(IndexNotReady, match="no index"):
        load_index(tmp_path / "nothing")
    out = write_index(tiny_index, tmp_path / "idx", {})
    with open(out / "codes.parquet", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(CorruptIndex, match="codes.parquet"):
        load_index(out)


@pytest.mark.parametrize("table, what", [("features.parquet", "features"), ("docs.parquet", "documents")])
def test_an_unverified_index_whose_files_disagree_is_refused_whole(tmp_path, tiny_index, table, what):
    import pyarrow.parquet as pq

    out = write_index(tiny_index, tmp_path / "idx", {})
    path = out / table
    pq.write_table(pq.read_table(path).slice(0, 5), path)  # still a valid table, cut short
    with pytest.raises(CorruptIndex, match=f"disagree on the number of {what}"):
        load_index(out, verify=False)


def test_an_unverified_index_with_embeddings_that_are_not_numbers_is_refused(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {})
    emb = np.load(out / "embeddings.npy")
    emb[3] = np.nan
    np.save(out / "embeddings.npy", emb)
    with pytest.raises(CorruptIndex, match="not finite"):
        load_index(out, verify=False)


def test_concepts_round_trip_through_a_table(tiny_index):
    concepts = build_concepts(tiny_index.corpus.texts(), tiny_index.codes, tiny_index.embeddings)
    back = concepts_from_table(concepts_table(concepts), {a: getattr(concepts, a) for a in CONCEPT_ARRAYS})
    assert back.terms == concepts.terms
    # Pads are dropped on the way out, so the table is as wide as its longest list.
    width = back.features.shape[1]
    assert (concepts.features[:, width:] == -1).all()
    for a in ("features", "precision", "recall"):
        np.testing.assert_array_equal(getattr(back, a), getattr(concepts, a)[:, :width])
    for a in ("df",) + CONCEPT_ARRAYS:
        np.testing.assert_array_equal(getattr(back, a), getattr(concepts, a))


def test_an_index_directory_that_cannot_be_made_is_refused_before_the_build(tmp_path):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(InvalidArgument, match="afile is not a directory"):
        check_out(tmp_path / "afile" / "sub" / "idx")
    check_out(tmp_path / "new" / "deeper" / "idx")  # to be made: fine, and the check leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    try:  # root passes every permission check, but nothing can make a directory in /proc
        os.rmdir(tempfile.mkdtemp(dir="/proc"))
    except OSError:
        with pytest.raises(InvalidArgument, match="no directory can be made in /proc"):
            check_out(Path("/proc/sae-search-idx"))

