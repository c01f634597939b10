"""Index builds are atomic (indexer/swap.py): a build writes beside the index and swaps it in by rename; a failed or
killed build leaves the old index serving, and what it left behind is cleared or restored on the next load."""

import json
import os
import stat

import pytest

import indexer.artifacts as artifacts
import indexer.swap as swap
from indexer.artifacts import MANIFEST, load_index, write_index
from indexer.errors import IndexNotReady, InvalidArgument
from tests.conftest import dead_pid, leftovers, locked


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
