"""Where an export's files go: partial files and folders, stale leftovers, SavedModel versions.

Everything is written under a .partial-<host>-<pid>- name first and renamed when whole and
verified, so TF Serving and phones never read half a file, and a killed export's leftovers
are recognised and removed by the next one.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from mnist_keras.errors import InputError
from mnist_keras.files import umask

PARTIAL = ".partial-"  # prefix of what an unfinished export is writing; never served or read
STALE_SECONDS = 24 * 3600  # a partial this old is a leftover even if its PID is alive again


def check_folder(path: Path) -> None:
    """Says in one line why an output folder cannot be written, before anything is."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise InputError(f"{path}: cannot create folder: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write in {existing}: permission denied")


def prepare_folder(path: Path) -> Path:
    """Creates a checked output folder and clears what killed exports left in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot create folder: {e.strerror}") from None
    remove_stale_partials(path)
    return path


def remove_stale_partials(folder: Path) -> None:
    """Deletes what killed exports left behind (.partial-<host>-<pid>-...), not a running one's."""
    host = socket.gethostname()
    for leftover in folder.glob(f"{PARTIAL}*"):
        match = re.match(rf"{re.escape(PARTIAL)}(.+)-(\d+)-", leftover.name)
        try:
            age = time.time() - leftover.lstat().st_mtime
        except FileNotFoundError:
            continue
        # Another machine's export (a shared folder) cannot be checked: give it a day.
        running = match and (_alive(int(match.group(2))) if match.group(1) == host else True)
        if running and age < STALE_SECONDS:
            continue
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def partial_path(folder: Path, name: str, is_dir: bool = False) -> Path:
    """A fresh temporary file or folder in `folder`, readable as the umask allows.

    (mkstemp's 0600 would hide a model from a TF Serving container running as another user.)
    """
    prefix = f"{PARTIAL}{socket.gethostname()}-{os.getpid()}-{name}."
    if is_dir:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
        path.chmod(0o777 & ~umask())
        return path
    fd, path = tempfile.mkstemp(prefix=prefix, dir=folder)
    os.fchmod(fd, 0o666 & ~umask())
    os.close(fd)
    return Path(path)


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
