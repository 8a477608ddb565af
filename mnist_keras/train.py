"""Trains the CNN, printing each epoch's average loss and the final test accuracy.

    python -m mnist_keras.train --epochs 5

Writes into --model_dir (default saved_models/): mnist.keras (the trained model),
best.keras (the epoch with the best test accuracy), history.json (per-epoch figures,
test metrics, settings), logs/ (TensorBoard) and, while a run is unfinished, backup/
(from which a killed run resumes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

from absl import flags

from mnist_keras import cli, data
from mnist_keras.errors import InputError

MODEL_FILE = "mnist.keras"
BEST_FILE = "best.keras"
HISTORY_FILE = "history.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
# What Keras' BackupAndRestore (double_checkpoint=True) writes into BACKUP_DIR.
BACKUP_FILES = ("latest.weights.h5", "latest.weights.h5.bkp",
                "training_metadata.json", "training_metadata.json.bkp")


@dataclasses.dataclass(frozen=True)
class Config:
    """One run's settings; all but the last two must match for a run to resume."""

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 0
    data_dir: str | None = None
    tfds: str | None = None
    train_examples: int = 0
    test_examples: int = 0
    jit_compile: str = "auto"
    progress: str = "bar"
    resume: bool = True


NOT_RESUME_KEYS = ("progress", "resume")


def validate(config: Config) -> None:
    """For callers from Python too; and NaN passes every flag bound, and a rate of 0 learns nothing."""
    if config.epochs < 1:
        raise InputError(f"--epochs={config.epochs}: must be at least 1")
    if config.batch_size < 1:
        raise InputError(f"--batch_size={config.batch_size}: must be at least 1")
    if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise InputError(f"--learning_rate={config.learning_rate}: must be a positive number")


def resume_point(workdir: Path, config: Config) -> tuple[int, list[dict]]:
    """The number of finished epochs in an unfinished run in workdir, and their history.

    A run that cannot continue under these settings is an error, not a silent restart:
    the user asked for this folder and may want the hours already spent in it.
    """
    metadata = workdir / BACKUP_DIR / "training_metadata.json"
    if not metadata.exists():
        return 0, []
    try:
        finished = int(json.loads(metadata.read_text())["epoch"])
        history = json.loads((workdir / HISTORY_FILE).read_text())
        previous = history["settings"]
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{workdir}: unreadable backup of an unfinished run ({e}); "
                         "start over with --noresume") from None
    current = dataclasses.asdict(config)
    changed = [f"--{k}={previous.get(k)!r} then, {v!r} now" for k, v in current.items()
               if k not in NOT_RESUME_KEYS and previous.get(k) != v]
    if changed:
        raise InputError(f"{workdir}: holds an unfinished run with other settings ({'; '.join(changed)}): "
                         "rerun with the same flags to resume, --noresume to start over, "
                         "or another --model_dir")
    return finished, history["epochs"][:finished]


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def remove_backup(workdir: Path) -> None:
    """Deletes Keras' backup files: done after the model is saved, so a kill before that resumes."""
    for name in BACKUP_FILES:
        (workdir / BACKUP_DIR / name).unlink(missing_ok=True)
    _remove_if_empty(workdir / BACKUP_DIR)


def start_fresh(workdir: Path) -> None:
    """Removes what an earlier run in workdir wrote that would mix with this one, and only that."""
    remove_backup(workdir)
    for events in (workdir / LOGS_DIR).glob("*/events.out.tfevents.*"):
        events.unlink()
    for folder in ("train", "validation", ""):
        _remove_if_empty(workdir / LOGS_DIR / folder)
    (workdir / HISTORY_FILE).unlink(missing_ok=True)


def remove_partial_files(workdir: Path) -> None:
    """Temporary files of a save that a SIGKILL interrupted."""
    for path in workdir.glob(".*.partial.keras"):
        path.unlink(missing_ok=True)


def save_model_atomic(model, path: Path) -> None:
    """model.save() to a temporary name, then rename: a kill never leaves half a model."""
    tmp = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def describe_device(tf) -> tuple[str, bool]:
    """Which device Keras will use, and whether it is a GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)}; {len(gpus)} visible)", True
    return f"CPU ({os.cpu_count()} cores)", False


def finite(value) -> float | None:
    """A float for history.json, which stays strict JSON: NaN and infinity become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def make_callbacks(keras, workdir: Path, record: dict, best_so_far: float | None) -> list:
    """Keras callbacks: per-epoch report, best checkpoint, TensorBoard, and backup for resume.

    The report (which writes history.json) runs before the backup, so a kill between
    the two makes the run redo that epoch rather than lose its line from the history.
    """

    class EpochReport(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            entry = {
                "epoch": epoch + 1,
                "avg_loss": finite(logs["avg_loss"]),
                "loss": finite(logs["loss"]),
                "accuracy": 100.0 * float(logs["accuracy"]),
                "test_avg_loss": finite(logs["val_avg_loss"]),
                "test_accuracy": 100.0 * float(logs["val_accuracy"]),
                "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "wall_seconds": round(time.perf_counter() - self.wall, 3),
                "cpu_seconds": round(time.process_time() - self.cpu, 3),
            }
            record["epochs"].append(entry)
            cli.write_atomic(workdir / HISTORY_FILE, json.dumps(record, indent=2) + "\n")
            print(f"Epoch {entry['epoch']}/{record['settings']['epochs']}: "
                  f"average loss {logs['avg_loss']:.4f} ({record['steps_per_epoch']} batches), "
                  f"test accuracy {entry['test_accuracy']:.2f}%, "
                  f"{entry['wall_seconds']:.1f} s ({entry['cpu_seconds']:.1f} CPU-s)", flush=True)

    class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint that saves under a temporary name and renames, like save_model_atomic."""

        def on_epoch_end(self, epoch, logs=None):
            if not math.isfinite(logs["avg_loss"]):
                return  # a diverged model is nobody's best
            final = Path(self.filepath)
            tmp = final.with_name(f".{final.stem}.partial.keras")
            self.filepath = str(tmp)
            try:
                super().on_epoch_end(epoch, logs)
                if tmp.exists():
                    os.replace(tmp, final)
            finally:
                self.filepath = str(final)

    return [
        # Listed first so the bar ends its line before the epoch summary is printed.
        keras.callbacks.ProgbarLogger(),
        EpochReport(),
        AtomicModelCheckpoint(str(workdir / BEST_FILE), monitor="val_accuracy", mode="max",
                              save_best_only=True, initial_value_threshold=best_so_far),
        keras.callbacks.TensorBoard(log_dir=str(workdir / LOGS_DIR)),
        keras.callbacks.TerminateOnNaN(),
        # Deleted by remove_backup() once the model is saved, not by Keras when fit() ends
        # (which would also delete the whole folder, whatever else it held).
        keras.callbacks.BackupAndRestore(str(workdir / BACKUP_DIR), double_checkpoint=True,
                                         delete_checkpoint=False),
    ]


def train_and_evaluate(config: Config, workdir: str | Path) -> dict:
    """Trains per `config`, writing into workdir; returns what history.json holds."""
    validate(config)
    workdir = Path(workdir)
    dataset = data.take(data.load(config.data_dir, config.tfds),
                        config.train_examples, config.test_examples)
    if workdir.exists() and not workdir.is_dir():
        raise InputError(f"--model_dir={workdir}: exists and is not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--model_dir={workdir}: cannot create it: {e.strerror}") from None
    cli.check_writable_parent(workdir / MODEL_FILE)
    first_epoch, done = resume_point(workdir, config) if config.resume else (0, [])
    if first_epoch == 0:
        start_fresh(workdir)
    remove_partial_files(workdir)

    # TensorFlow is imported only now: bad flags and data are reported without its 2 s start.
    import keras
    import tensorflow as tf

    from mnist_keras import evaluate, pipeline
    from mnist_keras import model as model_lib

    device, on_gpu = describe_device(tf)
    # XLA: on a GPU it fuses this small model's kernels; on these 2-core CPUs it made an
    # epoch twice as slow (23 s and 41 CPU-s against 12 s and 19.5 CPU-s; see README).
    jit = {"auto": on_gpu, "true": True, "false": False}[config.jit_compile]
    steps = pipeline.steps_per_epoch(len(dataset.x_train), config.batch_size)
    record = {
        "settings": dataclasses.asdict(config),
        "data": dataset.source,
        "train_examples": len(dataset.x_train),
        "test_examples": len(dataset.x_test),
        "steps_per_epoch": steps,
        "device": device,
        "jit_compile": jit,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "epochs": done,
    }
    print(f"Device: {device}, XLA {'on' if jit else 'off'}")
    print(f"Data: {dataset.source}: {len(dataset.x_train)} training and "
          f"{len(dataset.x_test)} test images, {steps} batches of {config.batch_size} per epoch")

    keras.utils.set_random_seed(config.seed)
    model = model_lib.build_model()
    model_lib.compile_model(
        model, model_lib.learning_rate(config.learning_rate, config.lr_schedule, steps * config.epochs), jit)
    print(f"Model: {model.count_params():,} parameters; Adam, learning rate {config.learning_rate:g}"
          f" ({config.lr_schedule}); writing to {workdir}/")
    if first_epoch:
        then = (f"continuing with epoch {first_epoch + 1}" if first_epoch < config.epochs
                else "finishing the run")
        print(f"Resuming the unfinished run in {workdir}/{BACKUP_DIR}: "
              f"{first_epoch} of {config.epochs} epochs done, {then}")

    best = max((e["test_accuracy"] / 100 for e in done), default=None)
    model.fit(
        pipeline.train_dataset(dataset.x_train, dataset.y_train, config.batch_size, config.seed, first_epoch),
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=pipeline.eval_dataset(dataset.x_test, dataset.y_test, config.batch_size),
        callbacks=make_callbacks(keras, workdir, record, best),
        verbose=1 if config.progress == "bar" else 0,
        shuffle=False,  # the dataset shuffles itself, reproducibly
    )

    diverged = [e["epoch"] for e in record["epochs"] if e["avg_loss"] is None]
    if diverged:  # TerminateOnNaN stopped it; the backup holds NaN weights, useless to resume
        remove_backup(workdir)
        raise InputError(f"--learning_rate={config.learning_rate:g}: training diverged in epoch "
                         f"{diverged[0]} (the loss became NaN or infinite); try a lower learning rate")
    record["test"] = evaluate.evaluate(model, dataset.x_test, dataset.y_test)
    save_model_atomic(model, workdir / MODEL_FILE)
    cli.write_atomic(workdir / HISTORY_FILE, json.dumps(record, indent=2) + "\n")
    remove_backup(workdir)
    test = record["test"]
    print(f"Saved {workdir / MODEL_FILE}, {workdir / BEST_FILE} (best epoch), {workdir / HISTORY_FILE}; "
          f"TensorBoard: tensorboard --logdir {workdir / LOGS_DIR}")
    print(f"Test accuracy: {test['accuracy']:.2f}% ({test['correct']}/{test['total']} correct)")
    return record


FLAGS = flags.FLAGS


def define_flags() -> None:
    defaults = Config()
    flags.DEFINE_integer("epochs", defaults.epochs, "Passes over the training set.", lower_bound=1)
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Images per training step.", lower_bound=1)
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam's (initial) learning rate.",
                       lower_bound=0)
    flags.DEFINE_enum("lr_schedule", defaults.lr_schedule, ["cosine", "constant"],
                      "cosine: decay the learning rate to zero over the run (reaches >= 99.0% "
                      "in 5 epochs); constant: keep it.")
    flags.DEFINE_integer("seed", defaults.seed,
                         "Seeds weights and shuffling: the same seed gives the same run.", lower_bound=0)
    flags.DEFINE_string("model_dir", "saved_models",
                        "Where the model, best checkpoint, history.json, TensorBoard logs and "
                        "the resume backup go.")
    flags.DEFINE_integer("train_examples", 0, "Use only the first N training images (0: all).",
                         lower_bound=0)
    flags.DEFINE_enum("jit_compile", defaults.jit_compile, ["auto", "true", "false"],
                      "XLA compilation; auto: on for a GPU, off on CPU, where it is slower.")
    flags.DEFINE_enum("progress", defaults.progress, ["bar", "none"],
                      "bar: Keras' progress bar while an epoch runs; none: only the line "
                      "printed at the end of each epoch.")
    flags.DEFINE_boolean("resume", defaults.resume,
                         "Continue an unfinished run found in --model_dir; --noresume starts over.")
    flags.DEFINE_boolean("report", False,
                         "At the end, also write the HTML report of what the network learned "
                         "(python -m mnist_keras.report) into --model_dir.")
    cli.define_data_flags()
    flags.adopt_module_key_flags(cli)  # list them in --help too


def main(argv: list[str]) -> None:
    del argv  # unused
    config = Config(
        **{field.name: getattr(FLAGS, field.name) for field in dataclasses.fields(Config)})
    train_and_evaluate(config, FLAGS.model_dir)
    if FLAGS.report:
        from mnist_keras import report

        dataset = data.take(data.load(config.data_dir, config.tfds), test_examples=config.test_examples)
        print(f"Report: {report.write_report(Path(FLAGS.model_dir) / MODEL_FILE, dataset)}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
