"""Exports the trained model for TF Serving, for phones and for the browser, and verifies every file.

The command (its flags, and the list of what it writes) is mnist_keras/export.py.
From Python: export_model(model_path, serving_dir, export_dir, dataset[, ExportOptions]) -> ExportSummary.
It runs STEPS in order (saved_model_step, tflite_step, app_models_step, index_step,
web_step), each reading the Export (the Network with its no-digit head, the data, the
verify.Reference every artifact is checked against) and adding its results and kept paths.
The artifacts themselves are written by formats.py and app_models.py; partial names, stale
leftovers and version numbers are folders.py's job; the TF Serving files are serving_files.py's.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mnist_keras.data.datasets import NUM_CLASSES, Data, scale_images
from mnist_keras.errors import InputError, first_line, printable
from mnist_keras.exporting import app_models, inspect_model, serving_files, tflite_metadata, verify, web_page
from mnist_keras.exporting.folders import check_folder, export_lock, partial_path, publish_version
from mnist_keras.exporting.formats import (
    APP_FORMATS,
    FORMATS,
    PIXELS,
    SAVED_MODEL,
    TFLITE_FORMATS,
    convert,
    describe_tflite,
    tflite_name,
    write_saved_model,
)
from mnist_keras.files import sha256_file, write_atomic
from mnist_keras.inference import no_digit, no_digit_fit
from mnist_keras.inference.no_digit_graph import Network
from mnist_keras.training import keras_file

# --- One artifact: write under a partial name, verify, then publish or discard -------------

def export_saved_model(network: Network, base: Path, reference: verify.Reference) -> verify.Result:
    """Writes, verifies and publishes the next SavedModel version; one that fails is removed.

    With a no-digit head (network.head): the signature's digit_score output, and its record
    in assets.extra/no_digit.json."""
    partial = partial_path(base, "savedmodel", is_dir=True)
    try:
        write_saved_model(network, partial, outputs="serving")
        if network.head is not None:
            no_digit.write_record(network.head, partial / "assets.extra" / "no_digit.json")
        serving_files.write_warmup(partial, reference.images[:32])  # TF Serving replays it on load
        result = reference.check("SavedModel", partial, quantized=False)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if not result.passed:
        shutil.rmtree(partial)
        result.path = f"{base}/(new version)"
        return result
    result.path = str(publish_version(partial, base))
    serving_files.write_configs(base)  # models/batching/monitoring.config, compose
    return result


def export_tflite(source: Path, fmt: str, folder: Path, calibration: np.ndarray, reference: verify.Reference,
                  provenance: dict) -> verify.Result:
    """Converts, verifies on the test set, and keeps the file and its JSON only if it passes.

    One that fails also removes an earlier export's file of that name, so export/ never
    mixes this model's files with another's.
    """
    final = folder / tflite_name(fmt)
    final_json = final.with_suffix(".json")
    partial = partial_path(folder, final.name)
    partial_json = partial_path(folder, final_json.name)
    try:
        model = convert(source, fmt, calibration)
        partial.write_bytes(tflite_metadata.embed(model, final.name, TFLITE_FORMATS[fmt][0], PIXELS, provenance))
        result = reference.check("TFLite " + fmt, partial, quantized=TFLITE_FORMATS[fmt][1])
        result.path = str(final)
        if result.passed:
            description = {**describe_tflite(partial, fmt, result, provenance), "file": final.name}
            partial_json.write_text(json.dumps(description, indent=2) + "\n")
            os.replace(partial, final)  # the model and its description, back to back
            os.replace(partial_json, final_json)
        else:
            for path in (final, final_json):
                path.unlink(missing_ok=True)
    except InputError:  # metadata not written or not read back: no file of that name stays
        for path in (final, final_json):
            path.unlink(missing_ok=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
        partial_json.unlink(missing_ok=True)
    return result


# --- The whole export, step by step ---------------------------------------------------------

@dataclasses.dataclass
class Export:
    """What the steps of one export read (the model, the data, the Keras reference) and add to."""

    model_path: Path
    network: Network  # the model, whether it ends in a softmax, its no-digit head (one more output)
    dataset: Data
    serving_dir: Path | None
    export_dir: Path | None
    tflite_formats: list[str]
    calibration: np.ndarray
    reference: verify.Reference  # the test images, the Keras model's probabilities and row, --max_drop
    provenance: dict
    results: list[verify.Result]  # the Keras row first, then one per artifact
    written: list[Path] = dataclasses.field(default_factory=list)  # kept files and folders
    progress: Callable[[str], None] = lambda line: None
    web_runtime: Path | None = None  # node_modules with LiteRT.js; None: web_export's default
    problems: list[str] = dataclasses.field(default_factory=list)  # artifacts or steps that failed outright
    clock: float = dataclasses.field(default_factory=time.monotonic)  # when the artifact at work began

    def add(self, result: verify.Result) -> None:
        self.results.append(result)
        if result.passed:
            self.written.append(Path(result.path))
        self.progress(f"  {result.artifact}: {'ok' if result.passed else 'FAILED'} ({self.lap():.0f} s)")

    def keep(self, result: verify.Result) -> None:
        """add, for a .tflite kept with its JSON description beside it."""
        self.add(result)
        if result.passed:
            self.written.append(Path(result.path).with_suffix(".json"))

    def refuse(self, path: Path, error: InputError) -> None:
        """An artifact that could not be written or checked at all: its files are gone, one line says why."""
        line = first_line(error) if path.name in first_line(error) else f"{path.name}: {first_line(error)}"
        self.problems.append(f"{line}, not kept")
        self.progress(f"  {path.name}: FAILED: {line} ({self.lap():.0f} s)")

    def lap(self) -> float:
        """Seconds since the last artifact: this one's writing and checking on the test images."""
        now = time.monotonic()
        seconds, self.clock = now - self.clock, now
        return seconds


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
    tflite_formats = [f for f in (*TFLITE_FORMATS, *APP_FORMATS) if f in formats]
    serving = Path(serving_dir) if SAVED_MODEL in formats and serving_dir is not None else None
    tflite_dir = Path(export_dir) if tflite_formats and export_dir is not None else None
    if SAVED_MODEL in formats and serving is None or tflite_formats and tflite_dir is None:
        raise InputError("name a serving folder for the SavedModel and an export folder for .tflite files")
    for folder in filter(None, [serving, tflite_dir]):
        check_folder(folder)
    if tflite_dir is not None:
        outputs = [app_models.FORMATS[f] if f in APP_FORMATS else tflite_name(f) for f in tflite_formats] + [
            Path(tflite_name(f)).with_suffix(".json").name for f in tflite_formats] + [
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


def saved_model_step(job: Export) -> None:
    """The next SavedModel version for TF Serving, verified before it is published."""
    if job.serving_dir is None:
        return
    job.add(export_saved_model(job.network, job.serving_dir, job.reference))


def tflite_step(job: Export) -> None:
    """Each .tflite asked for, converted from one probabilities-only SavedModel, each verified."""
    if not job.tflite_formats:
        return
    source = partial_path(job.export_dir, "tflite-source", is_dir=True)
    try:
        write_saved_model(job.network, source, outputs="probabilities")
        for fmt in (f for f in job.tflite_formats if f in TFLITE_FORMATS):
            try:
                result = export_tflite(source, fmt, job.export_dir, job.calibration, job.reference, job.provenance)
            except InputError as e:  # metadata not written or not read back: no file of that name stays
                job.refuse(job.export_dir / tflite_name(fmt), e)
                continue
            job.keep(result)
    finally:
        shutil.rmtree(source, ignore_errors=True)


def app_models_step(job: Export) -> None:
    """The camera model (MNIST preprocessing in the graph) and the 28x28 RGB model, each
    verified through MediaPipe's ImageClassifier (app_models.py)."""
    for fmt in (f for f in job.tflite_formats if f in APP_FORMATS):
        file = app_models.FORMATS[fmt]
        try:
            result = app_models.export_one(job.network, job.export_dir, file, job.reference, job.provenance)
        except InputError as e:  # metadata, or MediaPipe refusing the model: no file of that name stays
            job.refuse(job.export_dir / file, e)
            continue
        job.keep(result)


def index_step(job: Export) -> None:
    """labels.txt and export.json (the table, as JSON) beside the .tflite files."""
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
# a new artifact is one more function here (one that writes into the SavedModel version
# must run inside export_saved_model, before the version is published).
STEPS: list[Callable[[Export], None]] = [saved_model_step, tflite_step, app_models_step, index_step, web_step]


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
