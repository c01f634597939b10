import fcntl
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import indexer.artifacts as artifacts
import indexer.swap as swap
from indexer.artifacts import (
    CONCEPT_ARRAYS, MANIFEST, check_out, concepts_from_table, concepts_table, load_index, write_index,
)
from indexer.concepts import build_concepts
from indexer.errors import CorruptIndex, IndexNotReady, InvalidArgument
from tests.conftest import dead_pid


@contextmanager
def locked(path):
    """Hold the lock a writer holds on its build directory or swap note while it works."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


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


def test_failed_build_leaves_the_old_index_untouched(tmp_path, tiny_index, monkeypatch):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifacts, "_families_table", boom)
    with pytest.raises(RuntimeError):
        write_index(tiny_index, out, {"marker": "new"})
    assert json.loads((out / MANIFEST).read_text())["marker"] == "old"
    assert load_index(out).corpus.ids == tiny_index.corpus.ids
    assert leftovers(tmp_path) == []


def test_rebuild_replaces_in_one_step(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})
    write_index(tiny_index, out, {"marker": "new"})
    assert json.loads((out / MANIFEST).read_text())["marker"] == "new"
    assert leftovers(tmp_path) == []


def test_a_failed_swap_puts_the_old_index_back(tmp_path, tiny_index, monkeypatch):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})
    real_rename = swap.os.rename

    def rename(src, dst):  # the second rename of the swap fails (a full disk, a lost mount)
        if str(src).startswith(str(tmp_path / ".idx.tmp")):
            raise OSError("no space left")
        real_rename(src, dst)

    monkeypatch.setattr(swap.os, "rename", rename)
    with pytest.raises(OSError):
        write_index(tiny_index, out, {"marker": "new"})
    assert json.loads((out / MANIFEST).read_text())["marker"] == "old" and leftovers(tmp_path) == []


def test_a_build_never_replaces_a_folder_that_is_not_an_index(tmp_path, tiny_index):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(InvalidArgument, match="not an index"):
        write_index(tiny_index, mine, {})
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="is a file"):
        write_index(tiny_index, tmp_path / "notes.txt", {})
    assert (mine / "thesis.tex").read_text() == "years of work" and (tmp_path / "notes.txt").read_text() == "mine"
    if hasattr(os, "mkfifo"):  # a device or a pipe is no directory either (`--out /dev/null` once moved it aside)
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(InvalidArgument, match="not a directory"):
            write_index(tiny_index, tmp_path / "pipe", {})
        assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)
        (tmp_path / "pipe").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "thesis"]
    (tmp_path / "empty").mkdir()
    assert load_index(write_index(tiny_index, tmp_path / "empty", {})).corpus.ids == tiny_index.corpus.ids


def test_an_interrupt_just_after_the_new_index_moved_in_keeps_it(tmp_path, tiny_index, monkeypatch):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})
    real_rename = swap.os.rename

    def rename(src, dst):  # Ctrl-C lands right after the new index is in place
        real_rename(src, dst)
        if str(src).startswith(str(tmp_path / ".idx.tmp")):
            raise KeyboardInterrupt

    monkeypatch.setattr(swap.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        write_index(tiny_index, out, {"marker": "new"})
    monkeypatch.setattr(swap.os, "rename", real_rename)
    assert (tmp_path / ".idx.swap").exists()  # the note stays; the next load clears the old folder away
    assert load_index(out).manifest["marker"] == "new" and leftovers(tmp_path) == []


def test_an_index_set_aside_by_a_killed_build_is_restored_on_load(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})
    # A half-deleted folder from an earlier swap lies beside the one the killed build set aside.
    (tmp_path / ".idx.old-00000000").mkdir()
    out.rename(tmp_path / ".idx.old-1234abcd")  # the state a kill between the swap's two renames leaves
    (tmp_path / ".idx.swap").write_text(f"{dead_pid()} .idx.old-1234abcd")
    assert load_index(out).manifest["marker"] == "old"
    assert leftovers(tmp_path) == [".idx.old-00000000"]


def test_a_swap_still_running_is_not_undone(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "old"})
    out.rename(tmp_path / ".idx.old-1234abcd")
    (tmp_path / ".idx.swap").write_text(f"{dead_pid()} .idx.old-1234abcd")
    with locked(tmp_path / ".idx.swap"):  # its writer, mid-swap: whatever the process id says, the lock is held
        with pytest.raises(IndexNotReady):
            load_index(out)
        assert sorted(leftovers(tmp_path)) == [".idx.old-1234abcd", ".idx.swap"]
    assert load_index(out).manifest["marker"] == "old"  # lock released, as by its writer's death


def test_a_build_killed_after_its_swap_has_its_old_index_cleared_on_load(tmp_path, tiny_index):
    out = write_index(tiny_index, tmp_path / "idx", {"marker": "new"})
    (tmp_path / ".idx.old-1234abcd").mkdir()
    (tmp_path / ".idx.swap").write_text(f"{dead_pid()} .idx.old-1234abcd")
    assert load_index(out).manifest["marker"] == "new" and leftovers(tmp_path) == []


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


def test_a_build_clears_what_a_killed_build_left_and_spares_one_still_writing(tmp_path, tiny_index):
    dead = tmp_path / f".idx.tmp-{dead_pid()}-1234abcd"  # SIGKILL while writing: nothing could clean it up
    # A server in Docker is process 1 after every restart: a live process id says nothing about the writer.
    dead_here = tmp_path / f".idx.tmp-{os.getpid()}-5678abcd"
    running = tmp_path / f".idx.tmp-{dead_pid()}-9999abcd"
    for d in (dead, dead_here, running):
        d.mkdir()
        (d / "codes.parquet").write_text("half written")
    with locked(running):
        write_index(tiny_index, tmp_path / "idx", {})
    assert leftovers(tmp_path) == [running.name]


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


def test_an_index_name_is_refused_only_when_its_build_directory_name_would_not_fit(tmp_path, tiny_index):
    room = os.pathconf(tmp_path, "PC_NAME_MAX") - 22  # build_dir adds ".", ".tmp-", 7 pid digits, "-", 8 hex
    with pytest.raises(InvalidArgument, match=f"give one of at most {room}"):
        write_index(tiny_index, tmp_path / ("n" * (room + 1)), {})
    assert list(tmp_path.iterdir()) == []
    assert load_index(write_index(tiny_index, tmp_path / ("n" * room), {})).corpus.ids == tiny_index.corpus.ids


def test_a_swap_waits_for_one_under_way_and_then_takes_a_note_of_its_own(tmp_path):
    import threading

    note = tmp_path / ".idx.swap"
    note.write_text(f"{os.getpid()} .idx.old-1234abcd")
    taken = []
    with locked(note):  # another process's swap, mid-way: its note must not be truncated under it
        waiter = threading.Thread(target=lambda: taken.append(swap._take_note(note)))
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and note.read_text() == f"{os.getpid()} .idx.old-1234abcd"
        note.unlink()  # that swap ends
    waiter.join(5)
    fd = taken[0]
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(note)) and note.read_text() == ""
    finally:
        os.close(fd)
