"""Exports the trained model for TF Serving, for phones and for the browser, and verifies every file.

The command (its flags, and the list of what it writes) is mnist_keras/export.py.
From Python: export_model(model_path, serving_dir, export_dir, dataset[, ExportOptions]) -> ExportSummary.
It checks the input (check_outputs), loads and measures the model (start), then runs STEPS in
order: artifacts_step (each row of artifacts.ARTIFACTS asked for: converted, read back through its
runtime, judged, published), index_step (TF Serving's configs, labels.txt, export.json) and
web_step (export/web/, web_page.py). Each reads the artifacts.Export job and adds its results
and kept paths. Every file and folder is written by files.publish; the folders' locks, stale
leftovers and version numbers are folders.py's job; the TF Serving files are serving_files.py's.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, Data, scale_images
from mnist_keras.errors import InputError, printable
from mnist_keras.exporting import inspect_model, serving_files, verify, web_page
from mnist_keras.exporting.artifacts import ARTIFACTS, Export, publish_artifact
from mnist_keras.exporting.folders import check_folder, export_lock
from mnist_keras.exporting.formats import (  # noqa: F401 (TFLITE_FORMATS, write_saved_model: for callers)
    FORMATS,
    SAVED_MODEL,
    TFLITE_FORMATS,
    write_saved_model,
)
from mnist_keras.files import sha256_file, write_atomic
from mnist_keras.inference import no_digit, no_digit_fit
from mnist_keras.inference.no_digit_graph import Network
from mnist_keras.training import keras_file

# --- The whole export, step by step ---------------------------------------------------------

@dataclasses.dataclass
class ExportSummary:
    """What export_model wrote and measured: the table's rows, and the files kept."""

    results: list[verify.Result]
    written: list[Path]
    provenance: dict
    problems: list[str] = dataclasses.field(default_factory=list)  # e.g. the web page's runtime

    @property
    def failed(self) -> list[verify.Result]:
        return [r for r in self.results if r.passed is False]

    def failure_message(self) -> str:
        """One line naming each artifact that missed its bar (and was not kept), and each problem."""
        return "; ".join([verify.failure_message(r, self.results[0]) + ", not kept" for r in self.failed]
                         + self.problems)

    def format(self) -> str:
        return format_summary(self.results)


def check_outputs(model_path: str | Path, serving_dir: str | Path | None, export_dir: str | Path | None,
                  formats: Sequence[str] = FORMATS) -> tuple[Path, Path | None, Path | None, list[str]]:
    """Says in one line what is wrong with the model or the output folders, before any work.

    Returns the model path, the folders each format needs (None when it is not asked for)
    and the TFLite formats asked for.
    """
    model_path = keras_file.check_keras_file(model_path)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"--formats: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                         f"choose from {', '.join(FORMATS)}")
    tflite_formats = [a.name for a in ARTIFACTS if a.name in formats and not a.versioned]
    serving = Path(serving_dir) if SAVED_MODEL in formats and serving_dir is not None else None
    tflite_dir = Path(export_dir) if tflite_formats and export_dir is not None else None
    if SAVED_MODEL in formats and serving is None or tflite_formats and tflite_dir is None:
        raise InputError("name a serving folder for the SavedModel and an export folder for .tflite files")
    for folder in filter(None, [serving, tflite_dir]):
        check_folder(folder)
    if tflite_dir is not None:
        outputs = [name for a in ARTIFACTS if a.name in tflite_formats for name in (a.file, a.json)] + [
            "labels.txt", "export.json"]
        taken = [name for name in outputs if (tflite_dir / name).is_dir()]
        if taken:
            raise InputError(f"{tflite_dir / taken[0]}: is a folder; export writes a file there")
    return model_path, serving, tflite_dir, tflite_formats


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to export and how strictly: the command's flags beyond the model, the folders and the data."""

    formats: Sequence[str] = FORMATS
    max_drop: float = verify.DEFAULT_MAX_DROP  # accuracy points a quantized artifact may lose
    calibration_examples: int = 1000  # training images that calibrate the full-integer model
    web_runtime: str | Path | None = None  # node_modules with LiteRT.js; None: web_export's default


def calibration_images(dataset: Data, count: int) -> np.ndarray:
    """count training images, always the same ones, for the full-integer model's ranges."""
    rng = np.random.default_rng(0)
    return dataset.x_train[rng.choice(len(dataset.x_train), min(count, len(dataset.x_train)), replace=False)]


def start(model_path: str | Path, serving_dir: str | Path | None, export_dir: str | Path | None,
          dataset: Data, options: ExportOptions, progress: Callable[[str], None]) -> Export:
    """Checks, loads the model and measures it: what every step reads (export_model holds the folders' locks)."""
    model_path, serving, tflite_dir, tflite_formats = check_outputs(model_path, serving_dir, export_dir,
                                                                    options.formats)
    calibration = calibration_images(dataset, options.calibration_examples)
    model = keras_file.load_keras(model_path)
    reference, ends_in_softmax = verify.keras_reference(model, model_path, dataset, options.max_drop)
    keras = reference.keras
    progress(f"Exporting {printable(model_path)}: {keras.accuracy:.2f}% on {len(reference.labels)} test images "
             f"of {dataset.source}; each artifact is checked on the same images")
    head = no_digit_fit.load_or_fit(model_path, model, dataset.x_train, progress)
    if head is not None:  # the full-integer model's ranges must cover non-digits too, or its check drifts
        calibration = np.concatenate([calibration, no_digit_fit.calibration_negatives(len(calibration) // 2)])
        progress(f"No-digit threshold: {head.threshold:.4f} on the digit score, chosen on validation data "
                 f"(folded in: every reader decides {no_digit.SCORE} >= 0.5)")
    provenance = {
        "source_model": str(model_path),
        "source_model_sha256": sha256_file(model_path),
        "keras_test_accuracy": keras.accuracy,
        "test_data": dataset.source,
        "calibration_images": len(calibration),
        "no_digit_threshold": head.threshold if head is not None else None,
        "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return Export(model_path, Network(model, ends_in_softmax, head), dataset, serving, tflite_dir, tflite_formats,
                  calibration, reference, provenance, results=[keras], progress=progress,
                  web_runtime=Path(options.web_runtime) if options.web_runtime else None)


def artifacts_step(job: Export) -> None:
    """Each artifact asked for, in the table's order (artifacts.ARTIFACTS), converted, verified, published."""
    asked = {*job.tflite_formats, *([SAVED_MODEL] if job.serving_dir is not None else [])}
    try:
        for artifact in (a for a in ARTIFACTS if a.name in asked):
            publish_artifact(job, artifact)
    finally:
        job.close()  # the .tflite files' source SavedModel


def index_step(job: Export) -> None:
    """TF Serving's configs beside a new version; labels.txt and export.json (the table, as JSON)
    beside the .tflite files."""
    if any(r.artifact == "SavedModel" and r.passed for r in job.results):
        serving_files.write_configs(job.serving_dir)  # models/batching/monitoring.config, compose
    if job.export_dir is None:
        return
    labels = job.export_dir / "labels.txt"
    write_atomic(labels, "".join(f"{c}\n" for c in range(NUM_CLASSES)))
    summary = job.export_dir / "export.json"
    write_atomic(summary, json.dumps({**job.provenance, "artifacts": [r.as_dict() for r in job.results]},
                                     indent=2) + "\n")
    job.written += [labels, summary]
    if job.network.head is not None:  # the threshold and how the head was fitted, beside the .tflite files
        no_digit.write_record(job.network.head, job.export_dir / "no_digit.json")
        job.written.append(job.export_dir / "no_digit.json")


def web_step(job: Export) -> None:
    """export/web/: the drawing page running a .tflite this export wrote, in a browser (web_page.py)."""
    if not job.tflite_formats:
        return
    runtime = job.web_runtime or web_page.default_runtime()
    try:  # the inspection model costs seconds: only for a page that will be written
        web_page.choose_model(job.export_dir, job.written)
        will_write = (runtime / web_page.RUNTIME_PACKAGE).is_dir()
    except FileNotFoundError:
        will_write = False
    extras = inspection_files(job) if will_write else {}
    problem = web_page.export_web(job.export_dir, job.web_runtime, candidates=job.written, extras=extras)
    if problem:
        job.problems.append(problem)
    elif (job.export_dir / "web" / "index.html").is_file():
        job.written.append(job.export_dir / "web")


def inspection_files(job: Export) -> dict[str, bytes]:
    """The explain page's model (every layer by name) and conv weights, verified against Keras on
    200 test images (inspect_model.py); none for a model without the seed's layers, or one that fails."""
    if not inspect_model.supports(job.network.model):
        return {}
    try:
        files = inspect_model.files(job.network, scale_images(job.reference.images[:200]))
    except InputError as e:
        job.refuse(job.export_dir / "web" / inspect_model.MODEL_FILE, e)
        return {}
    job.progress(f"  web/{inspect_model.MODEL_FILE}: ok, every layer equals Keras' ({job.lap():.0f} s)")
    return files


# The steps, in order. Each reads the Export and adds its results and the paths it kept;
# a new artifact is one more row of artifacts.ARTIFACTS (one that writes into the SavedModel
# version goes inside artifacts.saved_model's writer, before the version is published).
STEPS: list[Callable[[Export], None]] = [artifacts_step, index_step, web_step]


def export_model(model_path: str | Path, serving_dir: str | Path | None, export_dir: str | Path | None,
                 dataset: Data, options: ExportOptions = ExportOptions(),
                 progress: Callable[[str], None] | None = None) -> ExportSummary:
    """Exports a .keras file to every format asked for, each verified on dataset's test split.

    An artifact that misses its bar is not kept and is reported in the summary's `failed`; one
    whose metadata cannot be written or read back, or that its runtime refuses, is not kept and
    is reported in `problems`; the other artifacts are still written. Bad input (model, folders,
    formats) raises InputError before anything is written, and so does another export writing in
    the same folders (folders.export_lock; its leftovers are removed once the lock is ours).
    progress: called with a line as each step ends (the command prints them).
    """
    _, serving, tflite_dir, _ = check_outputs(model_path, serving_dir, export_dir, options.formats)
    with export_lock(filter(None, [serving, tflite_dir])):
        job = start(model_path, serving_dir, export_dir, dataset, options, progress or (lambda line: None))
        for step in STEPS:
            step(job)
    return ExportSummary(job.results, job.written, job.provenance, job.problems)


def format_summary(results: list[verify.Result]) -> str:
    """The table of artifacts, and the list of files kept."""
    lines = [verify.format_table(results), ""]
    kept = [r.path for r in results[1:] if r.passed]
    if kept:
        lines.append("Kept: " + ", ".join(printable(path) for path in kept))
    lines.append("Time/image: the median of single-image calls on this machine "
                 "(TFLite: LiteRT, one thread).")
    return "\n".join(lines)


# --- The command ------------------------------------------------------------------------
