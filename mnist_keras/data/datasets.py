"""MNIST as numpy arrays: the shipped IDX files, any IDX folder, or TFDS.

Only numpy here, so that a bad data folder is reported before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_keras.errors import InputError, first_line

# The copy of MNIST that ships inside the package, with its SHA256SUMS and licence.
SHIPPED_DIR = Path(__file__).parent / "mnist"
SHIPPED_SOURCE = "MNIST (shipped copy, SHA-256 verified)"

IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# Role -> (file stem, magic). Files may be gzipped or raw, and some mirrors (Kaggle)
# spell the stem with a dot: train-images.idx3-ubyte.
FILES = {
    "train_images": ("train-images-idx3-ubyte", IMAGE_MAGIC),
    "train_labels": ("train-labels-idx1-ubyte", LABEL_MAGIC),
    "test_images": ("t10k-images-idx3-ubyte", IMAGE_MAGIC),
    "test_labels": ("t10k-labels-idx1-ubyte", LABEL_MAGIC),
}


class Data(NamedTuple):
    """uint8 images (N, 28, 28) and uint8 labels (N,), as stored; scaling is the pipeline's job."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] in [0, 255] -> float32 [N, 28, 28, 1] in [0, 1]: what the model takes."""
    return images[..., np.newaxis].astype(np.float32) / np.float32(255)


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parses one IDX file (gzip or raw) and checks its header against its length."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise InputError(f"{path}: truncated: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise InputError(
            f"{path}: wrong magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"({'images' if expected_magic == IMAGE_MAGIC else 'labels'})"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated: {len(raw)} bytes, header needs {header}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims))
    body = len(raw) - header
    if body < size:
        raise InputError(f"{path}: truncated: header says {dims} = {size} bytes of data, found {body}")
    if body > size:
        raise InputError(f"{path}: {body - size} unexpected bytes after the {dims} data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if raw[:2] != b"\x1f\x8b":  # not gzip: a raw IDX file
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputError(f"{path}: corrupt or truncated gzip file ({e})") from None


def find_file(folder: Path, stem: str) -> Path:
    """The file for `stem` in `folder`, gzipped or not."""
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder}: missing {stem}.gz (or {stem})")


def read_checksums(folder: Path) -> dict[str, str] | None:
    """The `sha256sum` listing in folder/SHA256SUMS, or None if the folder has none."""
    listing = folder / "SHA256SUMS"
    if not listing.is_file():
        return None
    try:
        text = listing.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{listing}: unreadable checksum list ({e})") from None
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise InputError(f"{listing}:{number}: not a 'SHA-256  filename' line")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def verify_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise InputError(
            f"{path}: SHA-256 mismatch: expected {expected[:16]}..., got {digest[:16]}... "
            "(the file is corrupted or was replaced)"
        )


def load_folder(folder: str | Path) -> Data:
    """Reads the four MNIST-format IDX files of a folder, verified if it has SHA256SUMS.

    The shipped folder always has SHA256SUMS; a user's folder (e.g. Debian's
    fashion-mnist) usually does not, and is then checked by its headers alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: data folder does not exist" if not folder.exists()
                         else f"{folder}: not a folder")
    sums = read_checksums(folder)
    if sums is None and folder.resolve() == SHIPPED_DIR.resolve():  # deleted by hand
        raise InputError(f"{folder / 'SHA256SUMS'}: missing; the shipped data cannot be verified")
    arrays = {}
    for role, (stem, magic) in FILES.items():
        path = find_file(folder, stem)
        if sums is not None:
            if path.name not in sums:
                raise InputError(f"{folder / 'SHA256SUMS'}: no checksum for {path.name}")
            verify_sha256(path, sums[path.name])
        arrays[role] = read_idx(path, magic)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        _check_split(f"{folder}: {split}", images, labels)
    shipped = folder.resolve() == SHIPPED_DIR.resolve()
    return Data(arrays["train_images"], arrays["train_labels"],
                arrays["test_images"], arrays["test_labels"],
                source=SHIPPED_SOURCE if shipped else str(folder))


def _check_split(where: str, images: np.ndarray, labels: np.ndarray) -> None:
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"{where} images have shape {images.shape[1:]}, this model needs 28x28")
    if len(images) != len(labels):
        raise InputError(f"{where}: {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:
        raise InputError(f"{where}: no examples")
    if labels.max() >= NUM_CLASSES:
        raise InputError(f"{where}: label {labels.max()} out of range 0-{NUM_CLASSES - 1}")


# Where TFDS downloads most datasets (and its prepared copies) from.
TFDS_HOST = ("storage.googleapis.com", 443)


def network_reachable(address: tuple[str, int] = TFDS_HOST, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to address opens within timeout (name lookup included)."""
    import socket
    import threading

    result: list[bool] = []

    def connect() -> None:  # getaddrinfo has no timeout of its own: a thread bounds it
        try:
            socket.create_connection(address, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return bool(result and result[0])


@contextlib.contextmanager
def tfds_scratch() -> Iterator[None]:
    """TFDS copies a dataset's description into tempfile.mkdtemp("tfds") and never removes it:
    while it runs, temporary folders go into one of ours, removed after."""
    with tempfile.TemporaryDirectory(prefix="mnist-keras-tfds-") as scratch:
        before, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            yield
        finally:
            tempfile.tempdir = before


def load_tfds(name: str) -> Data:
    """Loads a TFDS image dataset of 28x28x1 images (mnist, fashion_mnist, kmnist, ...).

    A dataset not yet prepared in the TFDS data folder needs a download; offline, TFDS would
    retry for minutes, so that case fails at once, in one line.
    """
    import tensorflow_datasets as tfds  # slow to import; only this source needs it

    try:
        with tfds_scratch():
            builder = tfds.builder(name)
            if not builder.is_prepared() and not network_reachable():
                raise InputError(
                    f"--tfds={name}: not prepared in {builder.data_dir_root} and cannot be downloaded "
                    f"({TFDS_HOST[0]} is unreachable); offline, train on the shipped MNIST (the default) "
                    "or --data_dir=FOLDER of IDX files")
            builder.download_and_prepare()
            loaded = builder.as_dataset(split=["train", "test"], as_supervised=True)
            # Batches of 10,000 rather than batch_size=-1, whose single huge batch aborts
            # TensorFlow 2.21 (std::length_error) on datasets of unknown length.
            arrays = [[np.concatenate(parts) for parts in zip(*tfds.as_numpy(split.batch(10_000)))]
                      for split in loaded]
    except InputError:
        raise
    except Exception as e:  # network, unknown name, bad download: all reach the user as one line
        raise InputError(f"--tfds={name}: cannot load: {first_line(e)}") from None
    splits = []
    for split, (images, labels) in zip(("train", "test"), arrays):
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        _check_split(f"--tfds={name}: {split}", images, labels)
        splits += [images.astype(np.uint8), labels.astype(np.uint8)]
    return Data(*splits, source=f"tfds:{name}")


def load(data_dir: str | None = None, tfds_name: str | None = None) -> Data:
    """The data a run asked for: TFDS, a folder, or (by default) the shipped MNIST."""
    if data_dir and tfds_name:
        raise InputError("--data_dir and --tfds name two data sources; give one")
    if tfds_name:
        return load_tfds(tfds_name)
    return load_folder(data_dir or SHIPPED_DIR)


def hold_out(data: Data, validation_examples: int) -> tuple[Data, np.ndarray, np.ndarray]:
    """(the data without its last N training examples, those N images, their labels).

    The last N, not a random N: the same images whatever the seed, so that runs compare,
    and the first images (which --train_examples takes) stay for training.
    """
    n = len(data.x_train)
    if validation_examples >= n:
        raise InputError(f"--validation_examples={validation_examples}: the training split has only "
                         f"{n} images; hold out fewer")
    keep = n - validation_examples
    return (Data(data.x_train[:keep], data.y_train[:keep], data.x_test, data.y_test, data.source),
            data.x_train[keep:], data.y_train[keep:])


def take(data: Data, train_examples: int = 0, test_examples: int = 0) -> Data:
    """The first N examples of each split (0 keeps all): quick runs and tests."""
    n_train = train_examples or len(data.x_train)
    n_test = test_examples or len(data.x_test)
    return Data(data.x_train[:n_train], data.y_train[:n_train],
                data.x_test[:n_test], data.y_test[:n_test], data.source)
