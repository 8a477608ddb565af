"""Where an export's files go: the folders' locks, stale leftovers, SavedModel versions.

Everything is written under a .partial-<host>-<pid>- name first and renamed when whole and
verified (files.publish), so TF Serving and phones never read half a file, and a killed export's
leftovers are recognised and removed here by the next one. A SavedModel version appears only by that rename,
so a killed export never leaves a half-written <N>. An export holds each output folder's lock
file (export_lock) from before its first write to its end, so two exports never interleave.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from mnist_keras.errors import InputError, printable
from mnist_keras.files import PARTIAL, partial_path, umask  # noqa: F401 (partial_path: for tests)

STALE_SECONDS = 24 * 3600  # a partial this old is a leftover even if its PID is alive again
# Before PARTIAL names, the web page was built in .web.partial-<pid> and swapped via .web.old-<pid>.
LEGACY_PARTIAL = re.compile(r"\.web\.(partial|old)-(\d+)$")
LOCK = ".export.lock"  # in each output folder, while an export writes there
_held: dict[Path, list[int]] = {}  # lock file -> [its descriptor, how many nested holders in this process]


@contextlib.contextmanager
def export_lock(folders: Iterable[Path]) -> Iterator[None]:
    """Holds each output folder's lock (creating the folder), then clears killed exports' leftovers in it.

    A second export fails at once, in one line naming the lock and the process holding it, rather
    than waiting: an export takes minutes, and one started by mistake (a second terminal, an
    overlapping CI job) should say so now, not hang silently and then publish yet another version.
    The lock is an flock, so the kernel releases it when its holder dies, however it dies. Nested
    holds in one process (export's command, then export_model, then the web page) share it.
    """
    taken = []
    try:
        for folder in sorted({Path(f).absolute() for f in folders}):
            taken.append(_acquire(folder))
        yield
    finally:
        for lock in reversed(taken):
            _release(lock)


def _acquire(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{folder}: cannot create folder: {e.strerror}") from None
    lock = folder.resolve() / LOCK
    if lock in _held:
        _held[lock][1] += 1
        return lock
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        except OSError as e:
            raise InputError(f"{lock}: cannot open the export lock: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read_text(errors="replace").strip() or "process unknown"
            os.close(fd)
            raise InputError(printable(f"{lock}: another export is writing in {folder} ({holder}); "
                                       "wait for it to finish or stop it, then export again")) from None
        if _same_file(fd, lock):  # else its holder removed it as we opened it: lock the new one
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n".encode())
    _held[lock] = [fd, 1]
    remove_stale_partials(folder)
    return lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _release(lock: Path) -> None:
    """The last nested holder removes the lock file, still holding it (then closes: the flock goes)."""
    _held[lock][1] -= 1
    if _held[lock][1]:
        return
    fd = _held.pop(lock)[0]
    lock.unlink(missing_ok=True)
    os.close(fd)


def check_folder(path: Path) -> None:
    """Says in one line why an output folder cannot be written, before anything is."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise InputError(f"{path}: cannot create folder: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write in {existing}: permission denied")


def remove_stale_partials(folder: Path) -> None:
    """Deletes what killed exports left behind (.partial-<host>-<pid>-..., and the older
    .web.partial-<pid>), not a running one's: a PID of this host still alive is kept a day."""
    host = socket.gethostname()
    for leftover in folder.iterdir():
        match = re.match(rf"{re.escape(PARTIAL)}(.+)-(\d+)-", leftover.name)
        legacy = LEGACY_PARTIAL.match(leftover.name)
        if not (match or legacy or leftover.name.startswith(PARTIAL)):
            continue
        try:
            age = time.time() - leftover.lstat().st_mtime
        except FileNotFoundError:
            continue
        # Another machine's export (a shared folder) cannot be checked: give it a day.
        if legacy:
            running = _alive(int(legacy.group(2)))
        else:
            running = match and (_alive(int(match.group(2))) if match.group(1) == host else True)
        if running and age < STALE_SECONDS:
            continue
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def versions(base: Path) -> list[int]:
    """The numbers taken in base: TF Serving's versions, and any file named like one."""
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def publish_version(partial: Path, base: Path, attempts: int = 100) -> Path:
    """Renames a finished SavedModel to the next version; never replaces an existing one."""
    for _ in range(attempts):
        target = base / str((versions(base) or [0])[-1] + 1)
        try:
            os.rename(partial, target)  # fails if another export took this number first
            return target
        except OSError:
            if not target.exists():
                raise
    raise InputError(f"{base}: could not claim a new version number in {attempts} tries")
