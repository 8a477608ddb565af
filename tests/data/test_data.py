"""The shipped MNIST, the IDX parser, other folders, TFDS, and every bad-data case."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_keras.data import datasets as data
from mnist_keras.errors import InputError
from tests.helpers import assert_one_line_error, run_module

# From the shipped README: the standard MNIST label counts.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_shipped_mnist_is_complete_and_verified(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.uint8
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == TEST_COUNTS
    assert mnist.x_train.max() == 255 and mnist.x_train.min() == 0
    assert "SHA-256 verified" in mnist.source
    assert (data.SHIPPED_DIR / "README.md").read_text().count("Creative Commons") == 1


def copy_mnist(tmp_path: Path, gunzip: bool = False, checksums: bool = False) -> Path:
    """A user's folder holding the shipped files, optionally decompressed, without SHA256SUMS."""
    folder = tmp_path / "idx"
    folder.mkdir()
    for stem, _ in data.FILES.values():
        source = data.SHIPPED_DIR / f"{stem}.gz"
        if gunzip:
            (folder / stem).write_bytes(gzip.decompress(source.read_bytes()))
        else:
            shutil.copy(source, folder)
    if checksums:
        shutil.copy(data.SHIPPED_DIR / "SHA256SUMS", folder)
    return folder


def test_raw_and_gzip_folders_read_the_same(tmp_path, mnist):
    raw = data.load_folder(copy_mnist(tmp_path, gunzip=True))
    assert raw.source == str(tmp_path / "idx")
    for ours, theirs in zip(raw[:4], mnist[:4]):
        np.testing.assert_array_equal(ours, theirs)


def test_dotted_file_names_are_found(tmp_path, mnist):
    folder = copy_mnist(tmp_path, gunzip=True)
    for path in folder.iterdir():
        path.rename(folder / path.name.replace("-idx", ".idx"))
    np.testing.assert_array_equal(data.load_folder(folder).y_test, mnist.y_test)


def test_take_keeps_the_first_examples(mnist):
    small = data.take(mnist, 100, 30)
    assert len(small.x_train) == 100 and len(small.y_test) == 30
    np.testing.assert_array_equal(small.x_train, mnist.x_train[:100])


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_folder():
    fashion = data.load_folder(FASHION)
    assert fashion.x_train.shape == (60000, 28, 28) and fashion.x_test.shape == (10000, 28, 28)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10


def test_validation_split_is_the_last_training_images_and_disjoint(mnist):
    train_part, x_val, y_val = data.hold_out(mnist, 5000)
    assert len(train_part.x_train) == 55000 and len(x_val) == len(y_val) == 5000
    np.testing.assert_array_equal(x_val, mnist.x_train[55000:])
    np.testing.assert_array_equal(train_part.x_test, mnist.x_test)  # the test split is untouched
    # --train_examples takes the first of the images that remain: never a validation image.
    ids = data.Data(np.zeros((100, 28, 28), np.uint8), np.arange(100, dtype=np.uint8),
                    mnist.x_test[:1], mnist.y_test[:1], "ids")
    for validation, train_examples in [(30, 0), (30, 70), (30, 10), (0, 50)]:
        rest, _, held_out = data.hold_out(ids, validation)
        used = data.take(rest, train_examples).y_train
        assert len(held_out) == validation and len(used) == (train_examples or 100 - validation)
        assert not set(used.tolist()) & set(held_out.tolist())
        assert held_out.tolist() == list(range(100 - validation, 100))
    with pytest.raises(InputError, match="--validation_examples=100: the training split has only 100 images"):
        data.hold_out(ids, 100)


def test_network_probe_answers_fast_either_way():
    import socket
    import time

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert data.network_reachable(listening.getsockname())
        closed = listening.getsockname()
    start = time.monotonic()
    assert not data.network_reachable(closed)
    assert not data.network_reachable(("no-such-host.invalid", 443), timeout=1)
    assert time.monotonic() - start < 5


def test_tfds_not_prepared_and_offline_fails_at_once(tmp_path, monkeypatch):
    """Offline, TFDS would retry its download for minutes; one line instead, in seconds."""
    pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core import constants

    monkeypatch.setattr(data, "network_reachable", lambda *_: False)
    monkeypatch.setattr(constants, "DATA_DIR", str(tmp_path))  # read when TFDS was imported: an empty one
    with pytest.raises(InputError) as raised:
        data.load(tfds_name="mnist")
    message = str(raised.value)
    assert message.startswith("--tfds=mnist: not prepared in ") and "cannot be downloaded" in message
    assert "shipped MNIST" in message and "--data_dir" in message and "\n" not in message


def test_tfds_offline_from_the_command_line(tmp_path):
    """This machine's real state: no network, no TFDS copy. Skipped where the network is up."""
    pytest.importorskip("tensorflow_datasets")
    if data.network_reachable():
        pytest.skip("the network is reachable here: TFDS would download")
    start = time.monotonic()
    result = run_module("mnist_keras.train", "--tfds=mnist", cwd=tmp_path, timeout=60,
                        env={"TFDS_DATA_DIR": str(tmp_path / "tfds")})
    assert_one_line_error(result, "--tfds=mnist: not prepared", "--data_dir")
    assert time.monotonic() - start < 30 and "Retrying" not in result.stderr
    assert not (tmp_path / "saved_models").exists()


def test_tfds_source_offline_with_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data, "network_reachable", lambda *_: True)  # the mock stands in for the download
    with tfds.testing.mock_data(num_examples=8):
        loaded = data.load(tfds_name="mnist")
    assert loaded.x_train.shape == (8, 28, 28) and loaded.x_train.dtype == np.uint8
    assert loaded.y_test.shape == (8,) and loaded.y_test.max() < 10
    assert loaded.source == "tfds:mnist"


# Each bad folder: how to break a copy of the shipped files, and what the error must say.
def _truncate_gz(folder):
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])


def _truncate_raw(folder):
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-784])


def _wrong_magic(folder):
    path = folder / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2:4] = b"\x08\x03"  # the images' magic in a labels file
    path.write_bytes(bytes(raw))


def _count_mismatch(folder):
    path = folder / "t10k-labels-idx1-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[:4] + (9999).to_bytes(4, "big") + raw[8:-1])


def _checksum_mismatch(folder):
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1] + b"\x07"))


def _missing_file(folder):
    (folder / "train-labels-idx1-ubyte.gz").unlink()


def _bad_label(folder):
    path = folder / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x0c")


def _binary_checksums(folder):
    (folder / "SHA256SUMS").write_bytes(b"\xff\xfe\x00garbage")


def _empty_file(folder):
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"")


BAD_FOLDERS = {
    # name: (gunzip, with SHA256SUMS, break it, fragments of the message)
    "truncated gzip": (False, False, _truncate_gz, ["train-images-idx3-ubyte.gz", "truncated"]),
    "truncated raw": (True, False, _truncate_raw, ["t10k-images-idx3-ubyte", "truncated", "7839216"]),
    "wrong magic": (True, False, _wrong_magic, ["t10k-labels-idx1-ubyte", "magic number 2051", "2049"]),
    "counts differ": (True, False, _count_mismatch, ["10000 images but 9999 labels"]),
    "checksum": (False, True, _checksum_mismatch, ["t10k-labels-idx1-ubyte.gz", "SHA-256 mismatch"]),
    "missing file": (False, False, _missing_file, ["missing train-labels-idx1-ubyte.gz"]),
    "label range": (True, False, _bad_label, ["label 12 out of range"]),
    "empty file": (True, False, _empty_file, ["t10k-labels-idx1-ubyte", "too short"]),
    "binary SHA256SUMS": (False, True, _binary_checksums, ["SHA256SUMS", "unreadable checksum list"]),
}


@pytest.mark.parametrize("case", BAD_FOLDERS)
def test_bad_folder_is_one_clear_line(tmp_path, case):
    gunzip, checksums, corrupt, fragments = BAD_FOLDERS[case]
    folder = copy_mnist(tmp_path, gunzip=gunzip, checksums=checksums)
    corrupt(folder)
    with pytest.raises(InputError) as raised:
        data.load_folder(folder)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


@pytest.mark.parametrize("case", ["truncated gzip", "wrong magic", "counts differ", "checksum"])
def test_bad_folder_from_the_command_line(tmp_path, case):
    gunzip, checksums, corrupt, fragments = BAD_FOLDERS[case]
    folder = copy_mnist(tmp_path, gunzip=gunzip, checksums=checksums)
    corrupt(folder)
    result = run_module("mnist_keras.train", f"--data_dir={folder}", cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "saved_models").exists()


def test_missing_data_folder_from_the_command_line(tmp_path):
    result = run_module("mnist_keras.train", "--data_dir=no/such/folder", cwd=tmp_path)
    assert_one_line_error(result, "no/such/folder", "does not exist")
    assert not (tmp_path / "saved_models").exists()


def test_unknown_tfds_name_is_one_line():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(InputError, match="--tfds=no_such_dataset: cannot load"):
        data.load(tfds_name="no_such_dataset")


def test_two_sources_are_refused():
    with pytest.raises(InputError, match="give one"):
        data.load(data_dir="x", tfds_name="mnist")
