"""Files written so that a reader never sees half of one: publish (and write_atomic), and SHA-256.

Everything a command keeps (an export's artifacts, the web page's folder, the report) is written
by publish: under a .partial-<host>-<pid>- name in its folder first, checked there, then renamed
into place, or removed. A killed process's partials are recognised by that name and removed by
the next export (exporting/folders.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Union

CACHE_ENV = "MNIST_KERAS_CACHE_DIR"  # where measurements and generated data are cached
PARTIAL = ".partial-"  # prefix of what is being written; never served or read
# What publish writes under one name: bytes or text (a file), a Path (a copy of that file), a
# mapping (a folder of those relative names), or a callable that fills the folder it is given
# (TensorFlow's SavedModel, matplotlib's figures: writers that need a path).
Content = Union[bytes, str, Path, Mapping[str, "Content"], Callable[[Path], None]]  # noqa: UP007 (a recursive alias)


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it): for modes mkstemp would make 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def remove(path: Path) -> None:
    """A file or a whole folder, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_content(folder: Path, name: str, content: Content) -> Path:
    """content (see Content) under a fresh partial name in folder: its path (nothing left if it fails)."""
    path = partial_path(folder, name, is_dir=not isinstance(content, bytes | str | Path))
    try:
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        elif isinstance(content, bytes | str):
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        elif callable(content):
            content(path)
        else:
            for relative, part in content.items():
                target = path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(write_content(target.parent, target.name, part), target)
    except BaseException:
        remove(path)
        raise
    return path


def replace(partial: Path, final: Path) -> Path:
    """Renames partial to final; an old folder there is moved aside first, then removed."""
    if not (partial.is_dir() and final.is_dir()):
        os.replace(partial, final)
        return final
    old = partial_path(final.parent, f"{final.name}-old", is_dir=True)
    old.rmdir()  # a free name for the folder being replaced
    os.rename(final, old)
    os.rename(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


Check = Callable[[dict[str, Path]], Mapping[str, Content] | None]


def publish(folder: Path, files: Mapping[str, Content], check: Check | None = None,
            place: Callable[[Path, Path], Path] = replace) -> list[Path] | None:
    """Writes files (name -> Content) under partial names in folder, checks them there, then
    renames each into place, back to back; the final paths, or None if the check refused them.

    check(partial paths by name): the files to add beside them (a description of what passed),
    or None to discard them all. place(partial, folder / name): the rename (the default replaces
    what was there; export's SavedModel claims the next version number instead). Whatever
    happens, raised or refused, no partial stays behind.
    """
    partials: dict[str, Path] = {}
    try:
        for name, content in files.items():
            partials[name] = write_content(folder, name, content)
        more = check(dict(partials)) if check else {}
        if more is None:
            return None
        for name, content in more.items():
            partials[name] = write_content(folder, name, content)
        return [place(partial, folder / name) for name, partial in partials.items()]
    finally:
        for partial in partials.values():
            remove(partial)


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """One file, published: a reader never sees half of it."""
    path = Path(path)
    publish(path.parent, {path.name: content})


def save_atomic(path: str | Path, save: Callable[[Path], None]) -> None:
    """save(temporary path) beside `path`, then a rename: for writers that take a path (model.save)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | Path) -> str:
    """The hex SHA-256 of a file, read in chunks (a SavedModel's variables can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """$MNIST_KERAS_CACHE_DIR, else $XDG_CACHE_HOME/mnist_keras, else ~/.cache/mnist_keras."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_keras"


def node_modules(package: str) -> Path:
    """The node_modules folder `npm ci --prefix web` filled with `package`: web/ in the current folder,
    else in the checkout this package runs from."""
    here = Path("web/node_modules")
    if (here / package).is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "web" / "node_modules"  # mnist_keras/ -> the checkout
