"""Digits as people write and type them (written.py, fonts.py, pen.py, templates.py): held out by
style, the same every run, made MNIST-style, and joined to MNIST in training."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_keras.data import fonts, negatives, templates, written
from mnist_keras.data.preprocess import BOX, SIZE


def families(split: str) -> set[str]:
    by_path = {font.path: font for font in fonts.fonts()}
    return {by_path[path].family for path in fonts.font_split(split)}


def test_fonts_are_held_out_by_family_with_print_and_handwriting_in_each_split():
    splits = {split: families(split) for split in written.SPLITS}
    assert not splits["train"] & splits["heldout"] and not splits["train"] & splits["validation"]
    assert not splits["validation"] & splits["heldout"]
    handwriting = {font.family for font in fonts.fonts() if font.handwriting}
    for split, names in splits.items():
        assert names & handwriting and names - handwriting, split
    assert all(fonts.digit_fonts(split) for split in written.SPLITS)
    assert "D050000L" not in set().union(*splits.values())  # dingbats draw no digits


def test_drawn_digits_hold_out_one_template_of_each_style_and_learn_every_style():
    train = {t.name for t in templates.digit_templates("train")}
    heldout = templates.digit_templates("heldout")
    assert heldout and not train & {t.name for t in heldout}
    assert {t.name for t in templates.digit_templates("validation")} == train
    train_styles = {t.style for t in templates.digit_templates("train")}
    assert {t.style for t in heldout} <= train_styles  # the style is learned from another template
    for digit in range(10):
        assert any(t.label == digit for t in heldout) and any(t.label == digit for t in templates.digit_templates(
            "train")), digit
    for style in ("1-flag-base", "7-crossed", "4-open"):
        assert style in train_styles, style


@pytest.mark.parametrize("kind", ["typed", "drawn"])
def test_each_kind_is_mnist_style_and_the_same_every_run(kind):
    first, again = written.make(kind, "heldout", 30), written.make(kind, "heldout", 30)
    np.testing.assert_array_equal(first.images, again.images)
    assert first.images.shape == (30, SIZE, SIZE) and first.images.dtype == np.uint8
    assert set(first.labels) <= set(range(10)) and len(set(first.labels)) > 3
    rows, cols = np.indices((SIZE, SIZE))
    for image in first.images:  # the ink fills a 20-pixel box, its centre of mass near the middle
        ink = np.nonzero(image > 64)
        assert max(np.ptp(ink[0]), np.ptp(ink[1])) + 1 >= BOX - 3
        mass = image.astype(float) / image.sum()
        assert abs((rows * mass).sum() - SIZE / 2) < 2 and abs((cols * mass).sum() - SIZE / 2) < 2
    other = written.make(kind, "train", 30)
    assert not set(other.styles) & set(first.styles)  # other fonts or templates


def test_mnist_kinds_need_their_source_and_keep_its_labels(mnist):
    with pytest.raises(ValueError, match="made from MNIST images"):
        written.make("reshaped", "heldout", 10)
    made = written.make("reshaped", "heldout", 40, (mnist.x_test, mnist.y_test))
    assert len(made.images) == 40 and set(made.labels) <= set(range(10))
    chosen = [np.flatnonzero((mnist.x_test == image).all(axis=(1, 2))) for image in made.images]
    assert sum(len(c) > 0 for c in chosen) < 5  # reshaped, not copied


def test_training_digits_are_cached_and_the_same_from_the_cache(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_KERAS_CACHE_DIR", str(tmp_path))
    source = (mnist.x_train[:500], mnist.y_train[:500])
    made = written.cached_training_digits(60, source)
    stored = list((tmp_path / "pictures").glob("*.npz"))
    assert len(stored) == 1 and len(made.images) == 60
    assert set(made.styles) & {"mnist"} and len(set(made.styles)) > 5  # every kind of the mix
    again = written.cached_training_digits(60, source)
    np.testing.assert_array_equal(made.images, again.images)
    np.testing.assert_array_equal(made.labels, again.labels)


def test_drawn_non_digits_are_held_out_by_template_and_digit_like_letters_apart():
    shapes = {split: {t.name for t in templates.shape_templates(split)} for split in ("train", "heldout")}
    letters = {split: {t.name for t in templates.letter_templates(split)} for split in ("train", "heldout")}
    for kind, named in (("drawn shapes", shapes), ("drawn letters", letters)):
        assert kind in negatives.KINDS
        made = negatives.make(kind, "heldout", 20)
        assert made.images.shape == (20, 28, 28) and not made.no_ink.any()
        assert set(made.sources) <= named["heldout"]  # each picture names the held-out template it was drawn from
    assert negatives.DIGIT_LIKE not in negatives.KINDS
    assert not shapes["train"] & shapes["heldout"]
    kinds = {split: {t.label for t in templates.shape_templates(split)} for split in ("train", "heldout")}
    assert kinds["heldout"] - kinds["train"]  # whole kinds of shape never fitted on
    letters = {t.label for t in templates.letter_templates("train")}
    assert "A" in letters and not letters & templates.DIGIT_LIKE_LETTERS


def test_training_non_digits_come_from_every_kind_but_not_the_heads_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_KERAS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(negatives, "COUNTS", {**negatives.COUNTS, "train": 30})  # the head's pictures, fewer
    made = negatives.training_negatives(25)
    kinds = [kind for kind in negatives.available() if kind != "blank"]
    assert made.shape == (25, 28, 28) and made.dtype == np.uint8
    assert made.reshape(25, -1).max(axis=1).min() > 0  # every one has ink
    heads = np.concatenate([negatives.cached(kind, "train", 30)[0] for kind in kinds])
    assert not any((heads == image).all(axis=(1, 2)).any() for image in made)  # other pictures than the head's
    np.testing.assert_array_equal(made, negatives.training_negatives(25))  # the same every run
    assert negatives.training_negatives(0).shape == (0, 28, 28)
