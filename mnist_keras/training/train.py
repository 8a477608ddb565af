"""Trains the CNN, printing each epoch's average loss and validation accuracy, then the test accuracy.

The command (its flags) is mnist_keras/train.py.

Writes into --model_dir (default saved_models/): mnist.keras (the trained model), best.keras
(the epoch with the best validation accuracy), history.json (per-epoch figures, test metrics,
settings), logs/ (TensorBoard) and, while a run is unfinished, backup/ (from which a killed
run resumes); see run_folder.py. The test set is read once, at the end.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from mnist_keras.data import datasets
from mnist_keras.errors import InputError, first_line
from mnist_keras.training import distribute
from mnist_keras.training.config import LR_SCALINGS, Config, validate
from mnist_keras.training.run_folder import BACKUP_DIR, BEST_FILE, HISTORY_FILE, LOGS_DIR, MODEL_FILE

__all__ = ["BACKUP_DIR", "BEST_FILE", "HISTORY_FILE", "LOGS_DIR", "MODEL_FILE", "Config", "Trained",
           "train_and_evaluate", "validate"]

EVAL_BATCH = 1000  # images per evaluation step


class Trained(NamedTuple):
    """What train_and_evaluate returns: `model, record = train_and_evaluate(...)`.

    model: the trained model as float32 (what mnist.keras holds); record: what history.json holds.
    """

    model: object  # keras.Model
    record: dict


@dataclasses.dataclass
class Run:
    """One training run as its steps see it: the settings, the data, where it trains, what it records."""

    config: Config
    workdir: Path
    chief: bool  # writes the run's files; the other workers write nothing
    dataset: datasets.Data  # training (with the digits in other styles) and test pictures
    mixed: int  # how many of the training pictures are digits in other styles
    non_digits: int  # and how many are non-digits (outlier exposure)
    x_val: np.ndarray
    y_val: np.ndarray
    first_epoch: int  # of a resumed run, the epochs done
    done: list  # their history
    placement: distribute.Placement | None = None
    jit: bool = False
    steps: int = 0  # per epoch
    record: dict = dataclasses.field(default_factory=dict)  # what history.json holds

    @property
    def global_batch(self) -> int:
        return self.config.batch_size * self.placement.replicas

    @property
    def learning_rate(self) -> float:
        """--learning_rate scaled by --lr_scaling for the replicas."""
        return self.config.learning_rate * LR_SCALINGS[self.config.lr_scaling](self.placement.replicas)


def train_and_evaluate(config: Config, workdir: str | Path) -> Trained:
    """Trains per `config`, writing into workdir; returns the float32 model and its record."""
    run = prepare(config, Path(workdir))
    # TensorFlow is imported only now: bad flags and data are reported without its slow start.
    place(run)
    print_plan(run)
    model = build(run)
    fit(run, model)
    return finish(run, model)


def prepare(config: Config, workdir: Path) -> Run:
    """Settings, TF_CONFIG and data checked and loaded, and the run folder made (or an unfinished run
    found in it), before TensorFlow starts."""
    validate(config)
    tf_config = distribute.read_tf_config()  # a bad TF_CONFIG is one line, before anything
    chief = distribute.is_chief(tf_config)
    if chief:
        from mnist_keras.training import run_folder

        run_folder.check_folder(workdir)
    loaded = datasets.load(config.data_dir, config.tfds)
    loaded, x_val, y_val = datasets.hold_out(loaded, config.validation_examples)
    dataset, mixed, non_digits = with_written_digits(
        datasets.take(loaded, config.train_examples, config.test_examples), config)
    first_epoch, done = 0, []
    if chief:  # the other workers write nothing: the chief's files are the run's
        first_epoch, done = run_folder.prepare(workdir, config)
    return Run(config, workdir, chief, dataset, mixed, non_digits, x_val, y_val, first_epoch, done)


def place(run: Run) -> None:
    """The strategy, device, XLA and precision (measured for auto), and the record that says so."""
    import keras
    import tensorflow as tf

    from mnist_keras.data import pipeline
    from mnist_keras.training import precision
    from mnist_keras.training.autotune import Measuring

    config = run.config
    run.placement = placement = distribute.place(config.strategy, config.cpu_replicas)
    run.steps = pipeline.steps_per_epoch(len(run.dataset.x_train), run.global_batch)
    device, on_gpu = precision.describe_device()
    run.jit = precision.choose_jit(config.jit_compile, on_gpu)
    tuning: dict = {}  # autotune's figures, for history.json
    measuring = Measuring(config.batch_size, placement.replicas, placement.workers, run.jit, placement.strategy,
                          run.dataset.x_train, run.dataset.y_train)
    dtype, why = precision.choose_precision(config.precision, on_gpu, measuring, details=tuning)
    run.record = {
        "settings": dataclasses.asdict(config),
        "data": run.dataset.source,
        "written_digits": run.mixed,
        "non_digits": run.non_digits,
        "train_examples": len(run.dataset.x_train) - run.mixed - run.non_digits,  # MNIST's; the others besides
        "validation_examples": len(run.x_val),
        "test_examples": len(run.dataset.x_test),
        "steps_per_epoch": run.steps,
        "device": device,
        "jit_compile": run.jit,
        "precision": dtype,
        "precision_measured": tuning or None,
        "strategy": {"name": placement.name, "replicas": placement.replicas,
                     "workers": placement.workers, "devices": list(placement.devices),
                     "task": placement.task, "global_batch": run.global_batch,
                     "learning_rate": run.learning_rate},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "epochs": run.done,
    }
    print(f"Device: {device}, XLA {'on' if run.jit else 'off'}")
    print(f"Precision: {dtype} ({why})")


def print_plan(run: Run) -> None:
    """The Strategy: and Data: lines."""
    config, placement = run.config, run.placement
    where = f"{placement.name} over {placement.replicas} replica(s)"
    if placement.workers > 1:
        where += f" on {placement.workers} workers; this is {placement.task}" + (
            " (the chief: it writes the outputs)" if run.chief else " (the chief writes the outputs)")
    elif placement.replicas > 1:
        where += f" ({', '.join(placement.devices)})"
    scale = LR_SCALINGS[config.lr_scaling](placement.replicas)
    print(f"Strategy: {where}; global batch {run.global_batch} = {config.batch_size} per replica "
          f"x {placement.replicas}; learning rate {run.learning_rate:g} = "
          f"{config.learning_rate:g} x {scale:g} ({config.lr_scaling} scaling)")
    n = len(run.x_val)
    held_out = (f"{n} validation (the last {n} training images)" if n
                else "no validation (--validation_examples=0: no per-epoch validation, no best.keras)")
    print(f"Data: {run.dataset.source}: {len(run.dataset.x_train)} training{mixed_note(run, config)}, "
          f"{held_out} and {len(run.dataset.x_test)} test images, {run.steps} batches of {run.global_batch} "
          "per epoch")


def build(run: Run) -> Any:
    """The model, compiled with its optimizer built, in the run's precision and strategy."""
    import keras

    from mnist_keras.training import model as model_lib

    config = run.config
    keras.utils.set_random_seed(config.seed)
    with run.placement.strategy.scope():
        model = model_lib.build_model(run.record["precision"])
        model_lib.compile_model(model, model_lib.learning_rate(
            run.learning_rate, config.lr_schedule, run.steps * config.epochs), run.jit)
        model.optimizer.build(model.trainable_variables)  # its slots too, before tf.function
    print(f"Model: {model.count_params():,} parameters; Adam, learning rate {run.learning_rate:g}"
          f" ({config.lr_schedule}); writing to {run.workdir}/")
    if run.first_epoch:
        then = (f"continuing with epoch {run.first_epoch + 1}" if run.first_epoch < config.epochs
                else "finishing the run")
        print(f"Resuming the unfinished run in {run.workdir / BACKUP_DIR}: "
              f"{run.first_epoch} of {config.epochs} epochs done, {then}")
    return model


def fit(run: Run, model: Any) -> None:
    """The epochs, with the callbacks; a failed worker or a diverged loss is one line."""
    import tensorflow as tf

    from mnist_keras.data import pipeline
    from mnist_keras.training import callbacks as callbacks_lib
    from mnist_keras.training import loop, run_folder

    config, dataset, placement = run.config, run.dataset, run.placement
    best = max((e["val_accuracy"] / 100 for e in run.done if e.get("val_accuracy") is not None), default=None)

    def make_train_data(first: int):
        return pipeline.train_dataset(dataset.x_train, dataset.y_train, run.global_batch, config.seed, first,
                                      config.reshape_share if run.mixed else 0.0)

    n = len(run.x_val)
    validation_data = pipeline.eval_dataset(run.x_val, run.y_val, EVAL_BATCH) if n else None
    # The bar redraws its line with \r and escape codes: only on a terminal, not into a log file.
    bar = config.progress == "bar" and sys.stdout.isatty()
    callbacks = callbacks_lib.make_callbacks(run.workdir, run.record, best, placement, bar, validation=bool(n))
    schedule = loop.Schedule(placement, config.epochs, run.steps, run.first_epoch, run.jit)
    try:
        loop.run_epochs(schedule, model, make_train_data, validation_data, callbacks)
    except tf.errors.OpError as e:
        if placement.workers == 1:
            raise
        # A collective failed: another worker died or was stopped. The job resumes only
        # when every worker is started again (the chief's backup holds the last epoch).
        raise InputError(f"a worker of the cluster failed ({type(e).__name__}: {first_line(e, 200)}); "
                         "start every worker again with the same flags to resume") from None
    diverged = [e["epoch"] for e in run.record["epochs"] if e["avg_loss"] is None]
    if diverged:  # TerminateOnNaN stopped it; the backup holds NaN weights, useless to resume
        if run.chief:
            run_folder.remove_backup(run.workdir / BACKUP_DIR)
        raise InputError(f"--learning_rate={config.learning_rate:g}: training diverged in epoch "
                         f"{diverged[0]} (the loss became NaN or infinite); try a lower learning rate")


def finish(run: Run, model: Any) -> Trained:
    """The one read of the test set, the replicas' weights compared, the model and history saved."""
    from mnist_keras.training import loop, metrics, run_folder
    from mnist_keras.training import model as model_lib

    record, workdir = run.record, run.workdir
    final = model_lib.float32_copy(model)  # what is saved and evaluated: plain float32
    record["test"] = metrics.evaluate(final, run.dataset.x_test, run.dataset.y_test)
    record["weights_fingerprints"] = loop.weights_fingerprints(run.placement.strategy, model)
    compare_replicas(run.placement, record["weights_fingerprints"])
    test = record["test"]
    if run.chief:
        run_folder.save_model(final, workdir / MODEL_FILE)
        record["files_sha256"] = run_folder.files_sha256(workdir)
        run_folder.write_history(workdir, record)
        run_folder.remove_backup(workdir / BACKUP_DIR)
        saved = f"{workdir / MODEL_FILE}, " + (f"{workdir / BEST_FILE} (best epoch), " if len(run.x_val) else "")
        print(f"Saved {saved}{workdir / HISTORY_FILE}; TensorBoard: tensorboard --logdir {workdir / LOGS_DIR}")
    print(f"Test accuracy: {test['accuracy']:.2f}% ({test['correct']}/{test['total']} correct)")
    return Trained(final, record)


def compare_replicas(placement: distribute.Placement, prints: list[str]) -> None:
    """With several replicas, the Weights: line: whether they all hold the same weights."""
    from mnist_keras.training import loop

    if placement.replicas <= 1:
        return
    identical = len(set(prints)) == 1
    if placement.workers > 1:  # compared across the workers too
        identical = identical and loop.same_on_all_workers(placement.strategy, prints[0])
    where = f"all {placement.replicas} replicas of the {placement.workers} workers" \
        if placement.workers > 1 else f"the {len(prints)} local replicas"
    print(f"Weights: {'identical on' if identical else 'DIFFERENT on'} {where}, "
          f"fingerprint {', '.join(sorted(set(prints)))}")


def with_written_digits(dataset: datasets.Data, config: Config) -> tuple[datasets.Data, int, int]:
    """The shipped MNIST's training images plus config.written_share as many digits in other styles
    (typed, drawn, reshaped), and config.negative_share as many non-digits labelled NO_DIGIT_LABEL:
    the network then reads people better, and answers non-digits with no digit in particular.
    Other data sources train as they are. Returns the data, and how many of each were added."""
    count = round(config.written_share * len(dataset.x_train))
    if not count or dataset.source != datasets.SHIPPED_SOURCE:
        return dataset, 0, 0
    from mnist_keras.data import negatives, written

    extra = written.cached_training_digits(count, (dataset.x_train, dataset.y_train), config.seed)
    others = negatives.training_negatives(round(config.negative_share * len(dataset.x_train)), config.seed)
    x_train = np.concatenate([dataset.x_train, extra.images, others])
    y_train = np.concatenate([dataset.y_train, extra.labels,
                              np.full(len(others), negatives.NO_DIGIT_LABEL, dataset.y_train.dtype)])
    return dataset._replace(x_train=x_train, y_train=y_train), len(extra.images), len(others)


def mixed_note(run: Run, config: Config) -> str:
    """What the training images are, for the Data: line."""
    if run.mixed:
        others = f"; {run.non_digits} non-digits, taught to read as no digit in particular" if run.non_digits else ""
        reshaped = f"; {config.reshape_share:.0%} of each batch reshaped afresh" if config.reshape_share else ""
        return (f" ({run.mixed} of them digits in other styles: typed, drawn, reshaped{others}{reshaped}; "
                "--written_share=0 for MNIST alone)")
    return " (MNIST alone)" if not config.written_share else " (no digits in other styles with this data)"
