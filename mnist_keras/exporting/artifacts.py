"""What export writes, as a table: each artifact declared once (ARTIFACTS), and the one step that
publishes any of them (publish_artifact).

An Artifact names its --formats entry, its file, the conversion that returns its bytes (no file
written: the SavedModel, which TensorFlow must write itself, returns a writer for a folder), the
runtime that reads it back on the test images (TF's SavedModel signature, LiteRT, MediaPipe's
ImageClassifier), its acceptance bar, and the JSON written beside it when it passes. publish_artifact
hands the bytes to files.publish: written under a partial name, checked there, renamed into place
with its JSON, or discarded with any earlier file of its names (export/ never mixes two models).
A new artifact is one more row. Export is the job every row reads (the model, the data, the Keras
reference) and adds its results to; steps.py runs the rows asked for, then the index and the page.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_keras.data.datasets import Data
from mnist_keras.errors import InputError, first_line
from mnist_keras.exporting import app_models, serving_files, tflite_metadata, verify
from mnist_keras.exporting.folders import publish_version
from mnist_keras.exporting.formats import (
    PIXELS,
    SAVED_MODEL,
    TFLITE_FORMATS,
    convert,
    describe_tflite,
    tflite_name,
    write_saved_model,
)
from mnist_keras.files import Content, partial_path, publish, remove, replace
from mnist_keras.inference import no_digit
from mnist_keras.inference.no_digit_graph import Network


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
    source: Path | None = None  # the probabilities SavedModel the .tflite files come from, once written

    def add(self, result: verify.Result, kept: list[Path]) -> None:
        """An artifact's row, and the files kept (none if it missed its bar)."""
        self.results.append(result)
        self.written += kept
        self.progress(f"  {result.artifact}: {'ok' if result.passed else 'FAILED'} ({self.lap():.0f} s)")

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

    def probabilities_model(self) -> Path:
        """The probabilities-only SavedModel every 28x28x1 .tflite is converted from: written once,
        under a partial name in the export folder, removed by close()."""
        if self.source is None:
            self.source = partial_path(self.export_dir, "tflite-source", is_dir=True)
            write_saved_model(self.network, self.source, outputs="probabilities")
        return self.source

    def close(self) -> None:
        if self.source is not None:
            shutil.rmtree(self.source, ignore_errors=True)
            self.source = None


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One thing export writes, declared once: how it is made, read back and judged."""

    name: str  # its --formats name
    file: str  # its file in the export folder (the SavedModel's partial name: it becomes version <N>)
    convert: Callable[[Export, Artifact], Content]  # the bytes, or a writer of the folder; writes nothing else
    runtime: Callable[[Export, Artifact, Path], verify.Result]  # its row on the test images, not yet judged
    bar: Callable[[verify.Result, verify.Reference], verify.Result]  # sets change, bar and passed
    describe: Callable[[Export, Artifact, Path, verify.Result], dict] | None = None  # the JSON beside it
    versioned: bool = False  # True: published as the serving folder's next version, not under `file`

    @property
    def json(self) -> str | None:
        """The JSON's file name beside it, if it has one."""
        return Path(self.file).with_suffix(".json").name if self.describe else None

    def folder(self, job: Export) -> Path:
        return job.serving_dir if self.versioned else job.export_dir


# --- The conversions (bytes, no file written), runtimes and descriptions of each kind -------

def saved_model(job: Export, artifact: Artifact) -> Content:
    """A writer of the SavedModel for TF Serving: its signature (and digit_score with a no-digit
    head, whose record goes in assets.extra/no_digit.json) and the warmup TF Serving replays on load."""
    def write(folder: Path) -> None:
        write_saved_model(job.network, folder, outputs="serving")
        if job.network.head is not None:
            no_digit.write_record(job.network.head, folder / "assets.extra" / "no_digit.json")
        serving_files.write_warmup(folder, job.reference.images[:32])

    return write


def tflite(job: Export, artifact: Artifact) -> bytes:
    """A 28x28x1 .tflite converted from the probabilities SavedModel, with its standard metadata."""
    model = convert(job.probabilities_model(), artifact.name, job.calibration)
    return tflite_metadata.embed(model, artifact.file, TFLITE_FORMATS[artifact.name][0], PIXELS, job.provenance)


def app_model(job: Export, artifact: Artifact) -> bytes:
    """The camera or RGB model for apps, with its metadata (app_models.py)."""
    return app_models.convert(job.network, artifact.file, job.provenance)


def own_runtime(job: Export, artifact: Artifact, path: Path) -> verify.Result:
    """TF's SavedModel signature, or LiteRT for a .tflite: what a server or a phone computes."""
    return job.reference.measure("SavedModel" if artifact.versioned else f"TFLite {artifact.name}", path)


def mediapipe(job: Export, artifact: Artifact, path: Path) -> verify.Result:
    """MediaPipe's ImageClassifier, as an app reads the model."""
    return app_models.mediapipe_measure(path, artifact.file, job.reference)


def describe_28x28(job: Export, artifact: Artifact, path: Path, result: verify.Result) -> dict:
    return {**describe_tflite(path, artifact.name, result, job.provenance), "file": artifact.file}


def describe_app(job: Export, artifact: Artifact, path: Path, result: verify.Result) -> dict:
    return app_models.describe(path.read_bytes(), artifact.file, result, job.provenance)


ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(SAVED_MODEL, "savedmodel", saved_model, own_runtime, verify.float_bar, versioned=True),
    *(Artifact(fmt, tflite_name(fmt), tflite, own_runtime,
               verify.quantized_bar if quantized else verify.float_bar, describe_28x28)
      for fmt, (_, quantized) in TFLITE_FORMATS.items()),
    *(Artifact(fmt, file, app_model, mediapipe, app_models.mediapipe_bar, describe_app)
      for fmt, file in app_models.FORMATS.items()),
)


# --- The one step that publishes any of them ---------------------------------------------

def publish_artifact(job: Export, artifact: Artifact) -> None:
    """Converts, writes under a partial name, reads it back through its runtime, judges it against
    its bar, and keeps it with its JSON; one that misses its bar, or that cannot be written or read
    (InputError: metadata, a runtime refusing it), is discarded with any earlier file of its names."""
    folder = artifact.folder(job)
    judged: list[verify.Result] = []

    def check(partials: dict[str, Path]) -> dict[str, Content] | None:
        path = partials[artifact.file]
        judged.append(artifact.bar(artifact.runtime(job, artifact, path), job.reference))
        if not judged[0].passed:
            return None
        if artifact.describe is None:
            return {}
        return {artifact.json: json.dumps(artifact.describe(job, artifact, path, judged[0]), indent=2) + "\n"}

    place = (lambda partial, _: publish_version(partial, folder)) if artifact.versioned else replace
    try:
        kept = publish(folder, {artifact.file: artifact.convert(job, artifact)}, check, place)
    except InputError as e:
        discard(folder, artifact)
        job.refuse(folder / artifact.file, e)
        return
    result = judged[0]
    if kept is None:
        discard(folder, artifact)
    target = f"{folder}/(new version)" if artifact.versioned else str(folder / artifact.file)
    result.path = str(kept[0]) if kept else target
    job.add(result, kept or [])


def discard(folder: Path, artifact: Artifact) -> None:
    """An earlier export's files of the artifact's names: not to be mistaken for this model's."""
    if not artifact.versioned:
        for name in filter(None, [artifact.file, artifact.json]):
            remove(folder / name)
