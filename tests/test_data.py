"""The shipped MNIST, the IDX parser, other folders, TFDS, and every bad-data case."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_module

from mnist_keras import data
from mnist_keras.errors import InputError

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


def test_tfds_source_offline_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
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
