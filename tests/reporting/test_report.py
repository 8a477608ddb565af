"""The report: each figure exists, has its size, and shows what it claims."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data import datasets as data
from mnist_keras.errors import InputError
from mnist_keras.inference import classifiers
from mnist_keras.reporting import figures as report_figures
from mnist_keras.reporting import page as report
from mnist_keras.training import keras_file, metrics, train
from tests.helpers import Offline, assert_no_library_lines, assert_one_line_error, run_module, static_server

FIGURES = report_figures.FIGURES


@pytest.fixture(scope="module")
def reported(trained, exported, tmp_path_factory):
    """write_report on a copy of the small trained model, with the export table."""
    workdir = trained.workdir
    folder = tmp_path_factory.mktemp("reported")
    for name in (train.MODEL_FILE, train.HISTORY_FILE):
        shutil.copy(workdir / name, folder / name)
    html_path = report.write_report(folder / train.MODEL_FILE, data.load(), exported.export / "export.json")
    record = json.loads((html_path.parent / "report.json").read_text())
    return html_path, record, folder


def test_the_report_is_written_beside_the_model(reported):
    html_path, _, folder = reported
    assert html_path == folder / "mnist_report" / "report.html" and html_path.is_file()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no partial folders


def test_the_command_prints_the_path_of_the_report(reported, tmp_path):
    _, _, folder = reported
    shutil.copy(folder / train.MODEL_FILE, tmp_path / "m.keras")
    result = run_module("mnist_keras.report", "--model=m.keras", "--test_examples=100", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(Path("m_report") / "report.html")
    assert re.fullmatch(r"m\.keras on 100 test images: \d+ s\nfigures drawn: \d+ s\n", result.stderr), result.stderr
    assert json.loads((tmp_path / "m_report" / "report.json").read_text())["test"]["total"] == 100


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_is_a_png_of_its_declared_size(reported, name):
    html_path, record, _ = reported
    with Image.open(html_path.parent / name) as image:
        assert image.format == "PNG"
        width, height = FIGURES[name]
        assert image.size == (round(width * report_figures.DPI), round(height * report_figures.DPI))
        assert np.asarray(image.convert("L")).std() > 5  # something is drawn
    assert name in record["figures"]


def test_html_references_only_files_that_exist(reported):
    """The figures, and export's explain page (where export wrote one), by addresses relative to the report."""
    html_path, record, _ = reported

    class Sources(HTMLParser):
        found: list[str] = []

        def handle_starttag(self, tag, attrs):
            for key, value in attrs:
                if key in ("src", "href"):
                    self.found.append(value)

    parser = Sources()
    parser.feed(html_path.read_text())
    explain = [record["explain_page"]] if record["explain_page"] else []  # none without LiteRT.js
    assert sorted(parser.found) == sorted([*FIGURES, *explain])
    for source in parser.found:
        assert not re.match(r"\w+://", source) and not source.startswith("/")
        assert (html_path.parent / unquote(source)).is_file()
    assert all(page.endswith("/web/explain.html") for page in explain)


BROWSER = pytest.mark.skipif(not shutil.which("chromium") and not os.environ.get("MNIST_KERAS_REQUIRE_BROWSER"),
                             reason="Debian's chromium is not installed")


@BROWSER
def test_the_link_opens_the_explain_page_where_one_server_serves_both(reported, exported, browser):
    html_path, record, _ = reported
    if not record["explain_page"]:
        pytest.skip("LiteRT.js is not installed: export wrote no explain page")
    root = Path(os.path.commonpath([html_path, exported.export]))
    server = static_server(root)
    session = Offline(browser, f"http://127.0.0.1:{server.server_address[1]}/{html_path.relative_to(root).as_posix()}")
    try:
        session.page.click("#explain-link")
        session.page.wait_for_url("**/web/explain.html")
        session.page.evaluate("window.mnistExplain.ready")
        assert session.page.evaluate("window.mnistExplain.stats.error") is None
        assert not session.foreign
    finally:
        session.close()
        server.shutdown()
        server.server_close()


def test_the_explain_link_is_relative_to_the_report_or_says_where_the_page_is(tmp_path, monkeypatch):
    report_dir = tmp_path / "saved_models" / "mnist_report"
    page = tmp_path / "export" / "web" / "explain.html"
    page.parent.mkdir(parents=True)
    page.write_text("<!doctype html>")
    export_json = tmp_path / "export" / "export.json"
    href, where = report.explain_page(report_dir, export_json, described=True)
    assert href == "../../export/web/explain.html" and (report_dir / href).resolve() == page.resolve()
    section = "".join(report.explain_section({"explain_page": href, "explain_note": where}))
    assert f'<a href="{href}" id=explain-link>{page}</a>' in section and "/web/explain.html" in section
    # an export of another model, or none with the page: no link, but where mnist-export writes it
    href, where = report.explain_page(report_dir, export_json, described=False)
    assert href is None and where.startswith(f"mnist-export --model with this model writes it to {page} ")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # no export/ here, as in a fresh clone
    href, where = report.explain_page(report_dir, None, described=True)
    assert href is None and "mnist-export --model with this model writes it to export/web/explain.html" in where
    assert "<a " not in "".join(report.explain_section({"explain_page": None, "explain_note": where}))


def test_confusion_matrix_matches_the_evaluation(reported, trained, mnist):
    _, record, folder = reported
    confusion = np.array(record["test"]["confusion_matrix"])
    assert confusion.sum() == 10_000
    expected = metrics.evaluate(keras_file.load_keras(folder / train.MODEL_FILE), mnist.x_test, mnist.y_test)
    assert record["test"]["confusion_matrix"] == expected["confusion_matrix"]
    assert record["test"]["per_class"] == expected["per_class"]


def test_mistakes_are_the_most_confident_misclassified_images(reported, mnist):
    _, record, folder = reported
    model = keras_file.load_keras(folder / train.MODEL_FILE)
    logits = model.predict(data.scale_images(mnist.x_test), verbose=0)
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
    inner = report.inner_outputs(keras_file.load_keras(folder / train.MODEL_FILE), mnist.x_test[:5])
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
    again = report.write_report(folder / train.MODEL_FILE, dataset, export_json=None, feature_map_index=3)
    assert again == html_path
    assert not (html_path.parent / "stale.png").exists()
    record = json.loads((html_path.parent / "report.json").read_text())
    assert record["test"]["total"] == 500 and record["feature_map_index"] == 3
    assert "Exported models" not in html_path.read_text()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_train_report_flag_writes_the_report(tmp_path):
    result = run_module("mnist_keras.train", "--epochs=1", "--train_examples=640",
                        "--test_examples=200", "--progress=none", "--model_dir=run", "--report",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nothing but the run's own lines, all on stdout (issue 27)
    assert_no_library_lines(result)
    assert result.stdout.strip().splitlines()[-1] == f"Report: {Path('run') / 'mnist_report' / 'report.html'}"
    record = json.loads((tmp_path / "run" / "mnist_report" / "report.json").read_text())
    assert "training_curves.png" in record["figures"] and record["test"]["total"] == 200


@BROWSER
def test_the_report_opens_offline_in_a_browser(reported, browser):
    html_path, _, _ = reported
    page = browser.new_page()
    try:
        page.route("http*://**", lambda route: route.abort())  # offline: nothing may be fetched
        page.goto(html_path.as_uri())
        widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
    finally:
        page.close()
    assert len(widths) == len(FIGURES) and all(w > 0 for w in widths)


@pytest.fixture(scope="module")
def drawn_inputs(reported, mnist):
    """The small model's inner outputs on 1,000 test images, as write_report computes them."""
    _, _, folder = reported
    model = keras_file.load_keras(folder / train.MODEL_FILE)
    images, labels = mnist.x_test[:1000], mnist.y_test[:1000]
    inner = report.inner_outputs(model, images)
    probabilities = classifiers.softmax(inner["logits"])
    return images, labels, inner, probabilities


def test_the_mistakes_grid_draws_exactly_the_images_it_names(drawn_inputs, tmp_path):
    images, labels, _, probabilities = drawn_inputs
    shown = report.mistakes(probabilities, labels)
    tiles = report_figures.plot_mistakes(images, shown, [str(c) for c in range(10)], tmp_path)["tiles"]
    assert len(tiles) == len(shown) > 0
    for tile, mistake in zip(tiles, shown):
        np.testing.assert_array_equal(tile, images[mistake["index"]])
        assert labels[mistake["index"]] != probabilities[mistake["index"]].argmax() == mistake["predicted"]


def test_the_confusion_figure_writes_the_counts_of_the_evaluation(drawn_inputs, tmp_path):
    _, labels, _, probabilities = drawn_inputs
    result = metrics.metrics(labels, probabilities.argmax(axis=1))
    cells = report_figures.plot_confusion(result, "digit", [str(c) for c in range(10)], tmp_path)["cells"]
    confusion = np.array(result["confusion_matrix"])
    assert cells == {(r, c): int(n) for (r, c), n in np.ndenumerate(confusion) if n}
    assert sum(cells.values()) == 1000


def test_the_feature_map_figure_draws_32_maps_of_14x14_and_64_of_7x7(drawn_inputs, tmp_path):
    images, labels, inner, _ = drawn_inputs
    drawn = report_figures.plot_feature_maps(images[0], "a 7", inner["pool1"][0], inner["pool2"][0], tmp_path)
    assert drawn["pool1"] == [(14, 14)] * 32 and drawn["pool2"] == [(7, 7)] * 64
    kernels = report_figures.plot_filters(inner["conv1"], tmp_path)["kernels"]
    assert len(kernels) == 32 and all(k.shape == (3, 3) for k in kernels)
    np.testing.assert_array_equal(kernels[5], inner["conv1"][:, :, 0, 5])


def test_the_curves_draw_the_history(reported, tmp_path):
    _, _, folder = reported
    history = json.loads((folder / train.HISTORY_FILE).read_text())
    loss_key, accuracy_key, held = report_figures.held_out(history)
    drawn = report_figures.plot_training_curves(history, tmp_path)
    assert drawn["lines"] == [[e[key] for e in history["epochs"]]
                              for key in ("avg_loss", loss_key, "accuracy", accuracy_key)]
    assert drawn["labels"] == ["training (during the epoch)", f"{held} (end of epoch)"] * 2


def _history(keys: str) -> dict:
    """Three epochs with the held-out figures under val_* (now) or test_* (older runs) keys."""
    return {"settings": {}, "epochs": [
        {"epoch": e, "avg_loss": 1.0 / e, "accuracy": 90.0 + e, f"{keys}_avg_loss": 1.5 / e,
         f"{keys}_accuracy": 89.0 + e} for e in (1, 2, 3)]}


@pytest.mark.parametrize("keys, label", [("val", "validation"), ("test", "test")])
def test_the_curves_read_validation_keys_and_older_test_keys(tmp_path, keys, label):
    history = _history(keys)
    drawn = report_figures.plot_training_curves(history, tmp_path)
    assert drawn["lines"][1] == [1.5, 0.75, 0.5] and drawn["lines"][3] == [90.0, 91.0, 92.0]
    assert drawn["labels"][1] == f"{label} (end of epoch)"


@pytest.mark.parametrize("keys, words", [("val", "validation images, held out of the training set"),
                                         ("test", "test images (this run predates the validation split)")])
def test_the_report_names_what_the_curves_were_measured_on(reported, tmp_path, keys, words):
    from mnist_keras.files import sha256_file

    _, _, folder = reported
    shutil.copy(folder / train.MODEL_FILE, tmp_path / train.MODEL_FILE)
    history = {**_history(keys), "files_sha256": {train.MODEL_FILE: sha256_file(tmp_path / train.MODEL_FILE)}}
    (tmp_path / train.HISTORY_FILE).write_text(json.dumps(history))
    page = report.write_report(tmp_path / train.MODEL_FILE, data.take(data.load(), test_examples=100),
                               export_json=None)
    assert words in page.read_text()
    record = json.loads((page.parent / "report.json").read_text())
    assert record["held_out"] == ("validation" if keys == "val" else "test")
    assert "training_curves.png" in record["figures"]


def test_no_curves_and_no_export_table_for_another_model(reported, trained, tmp_path):
    """A history or an export table that describe another model file are left out, and said so."""
    _, _, folder = reported
    workdir = trained.workdir
    shutil.copy(workdir / train.HISTORY_FILE, tmp_path / train.HISTORY_FILE)
    shutil.copy(workdir / train.BEST_FILE, tmp_path / "other.keras")  # not the file the history names
    with open(tmp_path / "other.keras", "ab") as f:
        f.write(b"\0")  # same model, other bytes: zip readers ignore trailing data
    export_json = tmp_path / "export.json"
    export_json.write_text(json.dumps({"source_model_sha256": "0" * 64, "artifacts": []}))
    page = report.write_report(tmp_path / "other.keras", data.take(data.load(), test_examples=300),
                               export_json=export_json)
    text = page.read_text()
    assert "another or an unfinished run" in text and "describes the export of another model" in text
    assert "training_curves.png" not in json.loads((page.parent / "report.json").read_text())["figures"]


@pytest.mark.parametrize("history, fragment", [
    ("{not json", "unreadable training history"),
    ('{"epochs": [{"epoch": 1}], "settings": {}}', "lacks the figures the curves need"),
    ('{"something": 1}', "not a training history"),
])
def test_a_broken_history_is_one_clear_error(reported, tmp_path, history, fragment):
    _, _, folder = reported
    shutil.copy(folder / train.MODEL_FILE, tmp_path / train.MODEL_FILE)
    (tmp_path / train.HISTORY_FILE).write_text(history)
    with pytest.raises(InputError, match=f"history.json: .*{fragment}"):
        report.write_report(tmp_path / train.MODEL_FILE, data.take(data.load(), test_examples=100))
    assert not (tmp_path / "mnist_report").exists()


def test_the_command_reports_a_broken_history_in_one_line(reported, tmp_path):
    _, _, folder = reported
    shutil.copy(folder / train.MODEL_FILE, tmp_path / train.MODEL_FILE)
    (tmp_path / train.HISTORY_FILE).write_text("{not json")
    result = run_module("mnist_keras.report", f"--model={tmp_path / train.MODEL_FILE}", cwd=tmp_path)
    assert_one_line_error(result, "history.json", "unreadable training history")
    assert not (tmp_path / "mnist_report").exists()


def test_a_missing_export_json_named_on_purpose_is_one_line(reported, tmp_path):
    _, _, folder = reported
    result = run_module("mnist_keras.report", f"--model={folder / train.MODEL_FILE}",
                        "--export_json=nowhere.json", cwd=tmp_path)
    assert_one_line_error(result, "--export_json=nowhere.json: no such file")


def test_a_model_of_another_shape_is_one_line(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1), name="images"),
                              keras.layers.Conv2D(16, 3, padding="same", name="conv1"),
                              keras.layers.MaxPooling2D(2, name="pool1"),
                              keras.layers.Conv2D(64, 3, padding="same", name="conv2"),
                              keras.layers.MaxPooling2D(2, name="pool2"),
                              keras.layers.Flatten(name="flatten"), keras.layers.Dense(128, name="dense"),
                              keras.layers.Dense(10, name="logits")])
    model.save(tmp_path / "narrow.keras")
    with pytest.raises(InputError, match=r"conv1 kernels \(3, 3, 1, 16\), pool1 \(14, 14, 16\)"):
        report.write_report(tmp_path / "narrow.keras", data.take(data.load(), test_examples=50))
    assert not (tmp_path / "narrow_report").exists()


def test_no_mistakes_means_no_mistakes_figure(reported, mnist, tmp_path):
    _, _, folder = reported
    model = keras_file.load_keras(folder / train.MODEL_FILE)
    predicted = metrics.predict_classes(model, mnist.x_test[:300])
    right = np.flatnonzero(predicted == mnist.y_test[:300])[:40]
    shutil.copy(folder / train.MODEL_FILE, tmp_path / "m.keras")
    dataset = data.Data(mnist.x_train[:10], mnist.y_train[:10], mnist.x_test[right], mnist.y_test[right],
                        "MNIST (40 images it reads right)")
    page = report.write_report(tmp_path / "m.keras", dataset, export_json=None)
    assert "No test image was misclassified" in page.read_text()
    assert not (page.parent / "mistakes.png").exists()


def test_fashion_mnist_classes_are_named_as_garments():
    assert report.class_names("/usr/share/datasets/fashion-mnist") == ("class", report.FASHION)
    assert report.class_names("MNIST (shipped copy, SHA-256 verified)")[0] == "digit"
