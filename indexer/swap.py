"""Replacing a directory whole, by rename, so that a reader finds the old one or the new one and never neither
for longer than two renames: `swap_into_place` sets the old directory aside and moves the new one in, and
`recover_swap` undoes a swap whose process was killed between the two renames (artifacts.py writes indexes
with them)."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from indexer.errors import InvalidArgument

log = logging.getLogger(__name__)


def _build_prefix(name: str) -> str:
    return f".{name}.tmp-"


def _build_dir_name(name: str, pid: int, tag: str) -> str:
    """The build directory beside an index named `name`: its writer's process id lets a later build tell a dead one."""
    return f"{_build_prefix(name)}{pid}-{tag}"


_BUILD_SUFFIX_BYTES = len(_build_dir_name("", 4_194_304, "0" * 8))
"""Bytes `new_build_dir` adds to `out`'s name, with the longest process id Linux gives (pid_max 2**22)."""


def check_name_room(out: Path) -> None:
    """Refuse an `out` whose build directory's name would pass the file system's limit on a name (255 bytes on
    most): the build would run every stage and fail only when it writes."""
    parent = out.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
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


def new_build_dir(out: Path) -> Path:
    """A fresh directory beside `out` to write a build into, named with this process's id so that
    `remove_dead_builds` can tell one whose writer was killed."""
    tmp = out.parent / _build_dir_name(out.name, os.getpid(), uuid.uuid4().hex[:8])
    tmp.mkdir()
    return tmp


def remove_dead_builds(out: Path) -> None:
    """Delete the build directories beside `out` whose process is gone: a build killed while writing (SIGKILL,
    a lost machine) cannot clean up after itself, and each left hundreds of megabytes behind for good."""
    prefix = _build_prefix(out.name)
    for tmp in out.parent.glob(f"{prefix}*"):
        pid = tmp.name.removeprefix(prefix).split("-")[0]
        if pid.isdigit() and tmp.is_dir() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("removed a killed build's leftovers path=%s", tmp)


def _swap_lock(out: Path) -> Path:
    return out.parent / f".{out.name}.swap"


def swap_into_place(tmp: Path, out: Path) -> None:
    """Move the finished build `tmp` to `out`, setting the old index aside first. A note beside them (`_swap_lock`:
    this process's id and the aside folder's name) lasts while the two renames run: a process killed between them
    leaves the old index aside, and `recover_swap` puts that very folder back."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    lock = _swap_lock(out)
    lock.write_text(f"{os.getpid()} {old.name}")
    # The note is removed only once `out` holds a whole index and nothing is left aside: an interrupt anywhere in
    # between (Ctrl-C lands between any two bytecodes) leaves it for `recover_swap`.
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    return True


def recover_swap(out: Path, marker: str) -> None:
    """Put back the index that a build set aside (`swap_into_place`) when it died before moving the new one in:
    without this, a kill between the two renames left no index at `out`. Only a swap whose process is gone is
    undone; one still running is left to finish (a reader then sees no index for that instant, as before). The
    aside folder is put back only if it holds `marker`, the file a whole index ends with (its manifest)."""
    lock = _swap_lock(out)
    try:
        pid, name = lock.read_text().split()
        pid_alive = _alive(int(pid))
    except (OSError, ValueError):
        return
    if pid_alive:
        return
    aside = out.parent / name
    if not out.exists() and (aside / marker).is_file():
        os.rename(aside, out)
        log.warning("restored the index a killed build had set aside path=%s from=%s", out, name)
    elif out.exists():
        shutil.rmtree(aside, ignore_errors=True)  # killed after its swap, before clearing the old index away
    lock.unlink(missing_ok=True)
