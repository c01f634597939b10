"""Replacing a directory whole, by rename, so that a reader finds the old one or the new one and never neither
for longer than two renames: `swap_into_place` sets the old directory aside and moves the new one in, and
`recover_swap` undoes a swap whose process was killed between the two renames (artifacts.py writes indexes
with them).

Whether a build or a swap is still under way is read from a lock its writer holds (`fcntl.flock` on the build
directory, and on the swap's note), never from a process id: the kernel drops a lock when its holder dies, while a
process id says nothing across containers (a server in Docker is process 1 after every restart, so a killed
build's leftovers were kept for good) or once the id is reused."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.errors import InvalidArgument

log = logging.getLogger(__name__)


def _build_prefix(name: str) -> str:
    return f".{name}.tmp-"


def _build_dir_name(name: str, pid: int, tag: str) -> str:
    """The build directory beside an index named `name`, with its writer's process id for whoever reads the folder."""
    return f"{_build_prefix(name)}{pid}-{tag}"


_BUILD_SUFFIX_BYTES = len(_build_dir_name("", 4_194_304, "0" * 8))
"""Bytes `build_dir` adds to `out`'s name, with the longest process id Linux gives (pid_max 2**22)."""


def nearest_existing(path: Path) -> Path:
    """`path` itself or its nearest ancestor that exists (a file, too, or a dangling link)."""
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def check_can_create(out: Path, what: str) -> None:
    """Refuse a directory `out` that cannot be created (or written into), before minutes of work: it, or else its
    nearest existing ancestor, must be a directory in which a directory can be made, which is tried (and undone)
    rather than read from permission bits (root passes every permission check, yet cannot make one in /proc).
    `what` names what would be written there in the message ("--out DIR")."""
    base = nearest_existing(out)
    if not base.is_dir():
        raise InvalidArgument(f"cannot write {what}: {base} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sae-search-probe-", dir=base))
    except OSError as exc:
        reason = exc.strerror or exc
        raise InvalidArgument(f"cannot write {what}: no directory can be made in {base} ({reason})") from None


def check_name_room(out: Path) -> None:
    """Refuse an `out` whose build directory's name would pass the file system's limit on a name (255 bytes on
    most): the build would run every stage and fail only when it writes."""
    parent = nearest_existing(out.parent)
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    room = limit - _BUILD_SUFFIX_BYTES
    if len(os.fsencode(out.name)) > room:
        raise InvalidArgument(
            f"the index directory's name is {len(os.fsencode(out.name))} bytes; give one of at most {room} (a build "
            f"writes beside it under a name {_BUILD_SUFFIX_BYTES} bytes longer, and this file system allows {limit})"
        )


@contextmanager
def build_dir(out: Path) -> Iterator[Path]:
    """A fresh directory beside `out` to write a build into, locked while the block runs, so that
    `remove_dead_builds` can tell one whose writer was killed; removed if the block raises."""
    tmp = out.parent / _build_dir_name(out.name, os.getpid(), uuid.uuid4().hex[:8])
    tmp.mkdir()
    # Between the mkdir and the lock a remover would take this directory for a dead one: a window of
    # microseconds, and the build would then fail on its next write, leaving the index as it was.
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def _unlocked(fd: int) -> bool:
    """Whether this process could take the lock on `fd`: then nothing holds it, and its writer is gone. The lock
    is released again when the caller closes `fd`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_dead_builds(out: Path) -> None:
    """Delete the build directories beside `out` whose writer is gone: a build killed while writing (SIGKILL,
    a lost machine) cannot clean up after itself, and each left hundreds of megabytes behind for good."""
    for tmp in out.parent.glob(f"{_build_prefix(out.name)}*"):
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone already, or not a directory
            continue
        try:
            if _unlocked(fd):
                shutil.rmtree(tmp, ignore_errors=True)
                log.warning("removed a killed build's leftovers path=%s", tmp)
        finally:
            os.close(fd)


def _swap_lock(out: Path) -> Path:
    return out.parent / f".{out.name}.swap"


def swap_into_place(tmp: Path, out: Path) -> None:
    """Move the finished build `tmp` to `out`, setting the old index aside first. A note beside them (`_swap_lock`:
    this process's id and the aside folder's name), locked while the two renames run, lasts until `out` holds a
    whole index again: a process killed between them leaves the old index aside, and `recover_swap` puts that very
    folder back."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    lock = _swap_lock(out)
    fd = _take_note(lock)
    try:
        os.write(fd, f"{os.getpid()} {old.name}".encode())
        # The note is removed only once `out` holds a whole index and nothing is left aside: an interrupt anywhere
        # in between (Ctrl-C lands between any two bytecodes) leaves it for `recover_swap`.
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            if not out.exists():
                os.rename(old, out)
                lock.unlink(missing_ok=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _take_note(lock: Path) -> int:
    """An empty swap note at `lock`, locked by this process (a file descriptor). A swap of another process may hold
    the note: this waits for it, and then takes a note of its own, since that swap unlinks its note as it ends."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                os.ftruncate(fd, 0)
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def recover_swap(out: Path, marker: str) -> None:
    """Put back the index that a build set aside (`swap_into_place`) when it stopped before moving the new one in
    (killed, or interrupted): without this, a kill between the two renames left no index at `out`. A swap still
    running (its note locked) is left to finish; a reader then sees no index for that instant, as before. The
    aside folder is put back only if it holds `marker`, the file a whole index ends with (its manifest)."""
    lock = _swap_lock(out)
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return
    try:
        # The note must still be the one opened: a swap that ended meanwhile unlinks it, and the next one makes anew.
        if not _unlocked(fd) or not os.path.samestat(os.fstat(fd), os.stat(lock)):
            return
        _pid, name = os.read(fd, 4096).decode().split()
    except (OSError, ValueError):
        return
    else:
        aside = out.parent / name
        if not out.exists() and (aside / marker).is_file():
            os.rename(aside, out)
            log.warning("restored the index a stopped build had set aside path=%s from=%s", out, name)
        elif out.exists():
            shutil.rmtree(aside, ignore_errors=True)  # stopped after its swap, before clearing the old index away
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)
