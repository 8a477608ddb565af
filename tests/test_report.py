"""The report: each figure exists, has its size, and shows what it claims."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_module
from mnist_keras import data, evaluate, report, train


@pytest.fixture(scope="module")
def reported(trained, exported, tmp_path_factory):
    """`python -m mnist_keras.report` on a copy of the small trained model, with the export table."""
    _, workdir = trained
    _, out, _ = exported
    folder = tmp_path_factory.mktemp("reported")
    for name in (train.MODEL_FILE, train.HISTORY_FILE):
        shutil.copy(workdir / name, folder / name)
    result = run_module("mnist_keras.report", f"--model={folder / train.MODEL_FILE}",
                        f"--export_json={out / 'export' / 'export.json'}", cwd=folder)
    assert result.returncode == 0, result.stderr
    html_path = Path(result.stdout.strip().splitlines()[-1])
    record = json.loads((html_path.parent / "report.json").read_text())
    return html_path, record, folder


def test_the_report_is_written_beside_the_model_and_its_path_printed(reported):
    html_path, _, folder = reported
    assert html_path == folder / "mnist_report" / "report.html" and html_path.is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial folders


@pytest.mark.parametrize("name", list(report.FIGURES))
def test_each_figure_is_a_png_of_its_declared_size(reported, name):
    html_path, record, _ = reported
    with Image.open(html_path.parent / name) as image:
        assert image.format == "PNG"
        width, height = report.FIGURES[name]
        assert image.size == (round(width * report.DPI), round(height * report.DPI))
        assert np.asarray(image.convert("L")).std() > 5  # something is drawn
    assert name in record["figures"]


def test_html_references_only_files_that_exist(reported):
    html_path, _, _ = reported

    class Sources(HTMLParser):
        found: list[str] = []

        def handle_starttag(self, tag, attrs):
            for key, value in attrs:
                if key in ("src", "href"):
                    self.found.append(value)

    parser = Sources()
    parser.feed(html_path.read_text())
    assert sorted(parser.found) == sorted(report.FIGURES)
    for source in parser.found:
        assert not re.match(r"\w+://", source) and (html_path.parent / source).is_file()


def test_confusion_matrix_matches_the_evaluation(reported, trained, mnist):
    _, record, folder = reported
    confusion = np.array(record["test"]["confusion_matrix"])
    assert confusion.sum() == 10_000
    expected = evaluate.evaluate(evaluate.load_model(folder / train.MODEL_FILE), mnist.x_test, mnist.y_test)
    assert record["test"]["confusion_matrix"] == expected["confusion_matrix"]
    assert record["test"]["per_class"] == expected["per_class"]


def test_mistakes_are_the_most_confident_misclassified_images(reported, mnist):
    _, record, folder = reported
    model = evaluate.load_model(folder / train.MODEL_FILE)
    logits = model.predict(mnist.x_test[..., None] / 255, verbose=0)
    predicted = logits.argmax(axis=1)
    wrong = int(np.sum(predicted != mnist.y_test))
    shown = record["mistakes"]
    assert len(shown) == min(report.MISTAKES_SHOWN, wrong)
    for mistake in shown:
        i = mistake["index"]
        assert mistake["true"] == mnist.y_test[i] != predicted[i] == mistake["predicted"]
    confidences = [m["confidence"] for m in shown]
    assert confidences == sorted(confidences, reverse=True)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    wrong_confidence = probabilities.max(axis=1)[predicted != mnist.y_test]
    assert confidences[-1] >= np.sort(wrong_confidence)[-len(shown)] - 1e-6  # none more sure left out


def test_feature_maps_have_the_shapes_of_each_stage(reported, trained, mnist):
    _, record, folder = reported
    assert record["feature_map_shapes"] == {"pool1": [14, 14, 32], "pool2": [7, 7, 64]}
    inner = report.inner_outputs(evaluate.load_model(folder / train.MODEL_FILE), mnist.x_test[:5])
    assert inner["pool1"].shape == (5, 14, 14, 32) and inner["pool2"].shape == (5, 7, 7, 64)
    assert inner["dense"].shape == (5, 128) and (inner["pool1"] >= 0).all()  # after ReLU


def test_pca_finds_the_directions_of_largest_variance():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3)) * [10.0, 3.0, 0.1]
    projected, explained = report.pca(points)
    assert projected.shape == (500, 2) and explained[0] > explained[1] > 0
    np.testing.assert_allclose(np.abs(np.corrcoef(projected[:, 0], points[:, 0])[0, 1]), 1, atol=1e-3)


def test_export_table_is_included_when_there_is_one(reported):
    html_path, record, _ = reported
    page = html_path.read_text()
    assert "Exported models" in page and "mnist_int8.tflite" in page
    assert [a["artifact"] for a in record["export"]["artifacts"]][:2] == ["Keras", "SavedModel"]


def test_a_model_path_that_does_not_exist_is_one_line(tmp_path):
    result = run_module("mnist_keras.report", "--model=nowhere/mnist.keras", cwd=tmp_path)
    assert_one_line_error(result, "nowhere/mnist.keras: no such model file")
    assert not list(tmp_path.iterdir())


def test_a_second_report_replaces_the_first_whole(reported, mnist):
    html_path, _, folder = reported
    (html_path.parent / "stale.png").write_bytes(b"from an earlier report")
    dataset = data.take(data.load(), test_examples=500)
    again = report.write_report(folder / train.MODEL_FILE, dataset, export_json=None, feature_map_digit=3)
    assert again == html_path
    assert not (html_path.parent / "stale.png").exists()
    record = json.loads((html_path.parent / "report.json").read_text())
    assert record["test"]["total"] == 500 and record["feature_map_digit"] == 3
    assert "Exported models" not in html_path.read_text()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_train_report_flag_writes_the_report(tmp_path):
    result = run_module("mnist_keras.train", "--epochs=1", "--train_examples=640",
                        "--test_examples=200", "--progress=none", "--model_dir=run", "--report",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"Report: {Path('run') / 'mnist_report' / 'report.html'}"
    record = json.loads((tmp_path / "run" / "mnist_report" / "report.json").read_text())
    assert "training_curves.png" in record["figures"] and record["test"]["total"] == 200


@pytest.mark.skipif(not shutil.which("chromium") and not os.environ.get("MNIST_KERAS_REQUIRE_BROWSER"),
                    reason="Debian's chromium is not installed")
def test_the_report_opens_offline_in_a_browser(reported):
    from playwright.sync_api import sync_playwright

    html_path, _, _ = reported
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                             args=["--no-sandbox"])
        page = browser.new_page()
        page.route("http*://**", lambda route: route.abort())  # offline: nothing may be fetched
        page.goto(html_path.as_uri())
        widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
        browser.close()
    assert len(widths) == len(report.FIGURES) and all(w > 0 for w in widths)
