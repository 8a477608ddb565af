"""Trains the CNN, printing each epoch's average loss and the final test accuracy.

    python -m mnist_keras.train --epochs 5

Writes into --model_dir (default saved_models/): mnist.keras (the trained model),
best.keras (the epoch with the best test accuracy), history.json (per-epoch figures,
test metrics, settings), logs/ (TensorBoard) and, while a run is unfinished, backup/
(from which a killed run resumes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

from absl import flags

from mnist_keras import cli, data, distribute
from mnist_keras.errors import InputError

MODEL_FILE = "mnist.keras"
BEST_FILE = "best.keras"
HISTORY_FILE = "history.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
EVAL_BATCH = 1000  # test images per evaluation step: 10 exact batches, a true mean
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
    strategy: str = "auto"
    precision: str = "auto"
    cpu_replicas: int = 1
    lr_scaling: str = "linear"
    progress: str = "bar"
    resume: bool = True


NOT_RESUME_KEYS = ("progress", "resume")
# How the learning rate grows with the number of replicas (the global batch grows with it).
LR_SCALINGS = {"linear": lambda replicas: replicas, "sqrt": math.sqrt, "none": lambda replicas: 1}
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
# Training steps run per call into TensorFlow (a tf.while_loop): fewer round trips to
# Python; the progress bar and the callbacks' batch hooks see every 50th step.
STEPS_PER_CALL = 50


def validate(config: Config) -> None:
    """For callers from Python too; and NaN passes every flag bound, and a rate of 0 learns nothing."""
    if config.epochs < 1:
        raise InputError(f"--epochs={config.epochs}: must be at least 1")
    if config.batch_size < 1:
        raise InputError(f"--batch_size={config.batch_size}: must be at least 1")
    if not (math.isfinite(config.learning_rate) and config.learning_rate > 0):
        raise InputError(f"--learning_rate={config.learning_rate}: must be a positive number")
    if config.cpu_replicas < 1:
        raise InputError(f"--cpu_replicas={config.cpu_replicas}: must be at least 1")
    if config.strategy not in distribute.STRATEGIES:
        raise InputError(f"--strategy={config.strategy}: choose from {', '.join(distribute.STRATEGIES)}")
    if config.precision not in PRECISIONS:
        raise InputError(f"--precision={config.precision}: choose from {', '.join(PRECISIONS)}")
    if config.lr_scaling not in LR_SCALINGS:
        raise InputError(f"--lr_scaling={config.lr_scaling}: choose from {', '.join(LR_SCALINGS)}")


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


def remove_backup(backup_dir: Path) -> None:
    """Deletes Keras' backup files: done after the model is saved, so a kill before that resumes."""
    for name in BACKUP_FILES:
        (backup_dir / name).unlink(missing_ok=True)
    _remove_if_empty(backup_dir)


def start_fresh(workdir: Path) -> None:
    """Removes what an earlier run in workdir wrote that would mix with this one, and only that."""
    remove_backup(workdir / BACKUP_DIR)
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


def choose_precision(requested: str, tf, on_gpu: bool, **measuring) -> tuple[str, str]:
    """The precision asked for; auto: the faster one on this machine, by measurement.

    A CPU's flags do not tell: bfloat16 was faster on CPUs with AMX and on a Zen 4 with
    AVX512_BF16 alone, slower on a Xeon with AVX512_BF16 but no AMX (docs/benchmarks.md).
    """
    if requested != "auto":
        return requested, "as asked"
    # --- autotune's lines: auto decides by measuring. measuring: batch_size, replicas, jit,
    # strategy, workers, images, labels, details (see autotune.auto_precision).
    from mnist_keras import autotune

    return autotune.auto_precision(tf, on_gpu, **measuring)
    # --- end of autotune's lines


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


def make_callbacks(keras, workdir: Path, record: dict, best_so_far: float | None,
                   placement: distribute.Placement, progress: bool) -> list:
    """Keras callbacks: per-epoch report, best checkpoint, TensorBoard, and backup for resume.

    Every process prints its epoch lines; only the chief writes history.json, best.keras,
    the TensorBoard logs and the backup (the other workers take their state from it when
    a run resumes, see broadcast_from_chief). The report (which writes history.json) runs
    before the backup, so a kill between the two makes the run redo that epoch rather
    than lose its line from the history.
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
                "learning_rate": float(logs["learning_rate"]),
                "wall_seconds": round(time.perf_counter() - self.wall, 3),
                "cpu_seconds": round(time.process_time() - self.cpu, 3),
            }
            record["epochs"].append(entry)
            if placement.is_chief:
                cli.write_atomic(workdir / HISTORY_FILE, json.dumps(record, indent=2) + "\n")
            print(f"Epoch {entry['epoch']}/{record['settings']['epochs']}: "
                  f"average loss {logs['avg_loss']:.4f} ({record['steps_per_epoch']} batches), "
                  f"test accuracy {entry['test_accuracy']:.2f}%, "
                  f"{entry['wall_seconds']:.1f} s ({entry['cpu_seconds']:.1f} CPU-s)", flush=True)

    class BestCheckpoint(keras.callbacks.Callback):
        """Saves the model (as float32, atomically) after each epoch that beats the best
        test accuracy so far; ModelCheckpoint would save the mixed-precision model as is."""

        def __init__(self, path: Path, best: float | None):
            super().__init__()
            self.path, self.best = path, best

        def on_epoch_end(self, epoch, logs=None):
            if not math.isfinite(logs["avg_loss"]):
                return  # a diverged model is nobody's best
            if self.best is None or logs["val_accuracy"] > self.best:
                self.best = logs["val_accuracy"]
                from mnist_keras.model import float32_copy

                save_model_atomic(float32_copy(self.model), self.path)

    callbacks = [keras.callbacks.ProgbarLogger()] if progress else []
    callbacks += [EpochReport(), keras.callbacks.TerminateOnNaN()]
    if placement.is_chief:
        callbacks += [
            BestCheckpoint(workdir / BEST_FILE, best_so_far),
            keras.callbacks.TensorBoard(log_dir=str(workdir / LOGS_DIR), write_graph=False),
            # Deleted by remove_backup() once the model is saved, not by Keras when training
            # ends (which would also delete the whole folder, whatever else it held).
            keras.callbacks.BackupAndRestore(str(workdir / BACKUP_DIR), double_checkpoint=True,
                                             delete_checkpoint=False),
        ]
    return callbacks


def make_train_steps(tf, keras, strategy, model, jit: bool):
    """A tf.function that runs n training steps on every replica; returns their sums.

    The same loop serves every strategy, from one CPU to many machines: each replica
    computes its gradients (XLA-compiled where jit is on) and Keras' optimizer all-reduces
    them; the loss is scaled by the global batch (tf.nn.compute_average_loss), so the
    summed update is one step on the whole batch (up to how a short last batch splits).
    """
    optimizer = model.optimizer

    def gradients(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example)
        correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        sums = tf.stack([loss, tf.reduce_sum(per_example), correct, tf.cast(tf.size(labels), tf.float32)])
        return tape.gradient(loss, model.trainable_variables), sums

    if jit:  # as a nested function: XLA compiles it; without XLA, nesting cost 35% (13.8 s an epoch, not 10.2)
        gradients = tf.function(gradients, jit_compile=True)

    def step(batch):
        grads, sums = gradients(*batch)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return sums

    @tf.function
    def train_steps(iterator, n):
        # [sum of batch-mean losses, sum of per-example losses, correct, examples]
        totals = tf.zeros([4])
        for _ in tf.range(n):
            sums = strategy.run(step, args=(next(iterator),))
            totals += strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
        return totals

    return train_steps


def make_evaluate(tf, keras, model, jit: bool):
    """Test loss and accuracy, on this process's device: the weights are the same everywhere."""

    @tf.function(jit_compile=jit)
    def batch_sums(images, labels):
        logits = model(images, training=False)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        return tf.reduce_sum(per_example), correct

    def evaluate(dataset) -> dict:
        loss = correct = count = 0.0
        for images, labels in dataset:
            batch_loss, batch_correct = batch_sums(images, labels)
            loss, correct, count = loss + float(batch_loss), correct + float(batch_correct), count + len(labels)
        return {"val_avg_loss": loss / count, "val_loss": loss / count, "val_accuracy": correct / count}

    return evaluate


def weights_fingerprints(strategy, model) -> list[str]:
    """A short hash of the trained weights on each local replica: equal when they agree."""
    import numpy as np

    per_variable = [strategy.experimental_local_results(v.value) for v in model.trainable_variables]
    return [hashlib.sha256(b"".join(np.asarray(value).tobytes() for value in replica)).hexdigest()[:16]
            for replica in zip(*per_variable)]


def same_on_all_workers(tf, strategy, fingerprint: str) -> bool:
    """Whether every replica of every worker holds the weights this one does.

    Each contributes its fingerprint as a number, x and x squared; their means across
    replicas agree only if all the numbers are equal (zero variance).
    """
    value = float(int(fingerprint[:12], 16))  # 48 bits: exact in float64
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant([value, value * value], tf.float64))
    mean, mean_square = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()
    return bool(mean == value and mean_square - mean * mean <= 1e-6 * max(mean_square, 1.0))


def broadcast_from_chief(tf, strategy, model, first_epoch: int) -> int:
    """Gives every worker the chief's weights, optimizer state and resume point.

    Only the chief keeps a backup (BackupAndRestore restored it in on_train_begin); the
    others, restarted on their own machines, have nothing to restore from, so the chief's
    state is all-reduced to them: the chief's replica 0 contributes it, every other
    replica zeros.
    """
    import numpy as np

    def from_chief(value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, np.float64 if value.dtype.kind in "iub" else value.dtype)
        per_replica = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(value if ctx.replica_id_in_sync_group == 0 else np.zeros_like(value)))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()

    for variable in [*model.variables, *model.optimizer.variables]:
        value = np.asarray(variable.numpy())
        variable.assign(from_chief(value).astype(value.dtype))
    return int(from_chief(np.array(first_epoch)))


def run_epochs(tf, keras, placement: distribute.Placement, model, make_train_data, test_data,
               callbacks, config: Config, steps: int, first_epoch: int, jit: bool) -> None:
    """The training loop: epochs of steps, the callbacks told as model.fit() would tell them.

    make_train_data(first_epoch): the training stream from that epoch on.
    """
    strategy = placement.strategy
    train_steps = make_train_steps(tf, keras, strategy, model, jit)
    evaluate = make_evaluate(tf, keras, model, jit)
    hooks = keras.callbacks.CallbackList(callbacks, model=model, verbose=1, epochs=config.epochs,
                                         steps=steps)
    model.stop_training = False
    # Outside strategy.scope(): there, restoring the backup made the chief alone create a
    # variable, whose broadcast the other workers never joined (the collectives deadlock).
    hooks.on_train_begin()
    if placement.workers > 1:
        chosen = broadcast_from_chief(tf, strategy, model, first_epoch)
        if chosen and not placement.is_chief:
            print(f"Resuming from the chief's backup: {chosen} of {config.epochs} epochs done")
        first_epoch = chosen
    iterator = iter(strategy.experimental_distribute_dataset(make_train_data(first_epoch)))
    logs: dict = {}
    for epoch in range(first_epoch, config.epochs):
        hooks.on_epoch_begin(epoch)
        totals, done = 0.0, 0
        while done < steps and not model.stop_training:
            n = min(STEPS_PER_CALL, steps - done)
            totals = totals + train_steps(iterator, tf.constant(n)).numpy()
            done += n
            logs = {"avg_loss": totals[0] / done, "loss": totals[1] / totals[3],
                    "accuracy": totals[2] / totals[3]}
            hooks.on_train_batch_end(done - 1, logs)
        logs = {**logs, **evaluate(test_data), "learning_rate": float(
            keras.ops.convert_to_numpy(model.optimizer.learning_rate))}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end(logs)


def train_and_evaluate(config: Config, workdir: str | Path) -> dict:
    """Trains per `config`, writing into workdir; returns what history.json holds."""
    validate(config)
    workdir = Path(workdir)
    tf_config = distribute.read_tf_config()  # a bad TF_CONFIG is one line, before anything
    chief = distribute.is_chief(tf_config)
    dataset = data.take(data.load(config.data_dir, config.tfds),
                        config.train_examples, config.test_examples)
    if workdir.exists() and not workdir.is_dir():
        raise InputError(f"--model_dir={workdir}: exists and is not a folder")
    first_epoch, done = 0, []
    if chief:  # the other workers write nothing: the chief's files are the run's
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

    placement = distribute.place(config.strategy, config.cpu_replicas)
    device, on_gpu = describe_device(tf)
    # XLA: on a GPU it fuses this small model's kernels; on these 2-core CPUs it made an
    # epoch twice as slow (23 s and 41 CPU-s against 12 s and 19.5 CPU-s; see README).
    jit = {"auto": on_gpu, "true": True, "false": False}[config.jit_compile]
    tuning: dict = {}  # autotune's figures, for history.json
    precision, why = choose_precision(config.precision, tf, on_gpu, batch_size=config.batch_size,
                                      replicas=placement.replicas, jit=jit, strategy=placement.strategy,
                                      workers=placement.workers, images=dataset.x_train,
                                      labels=dataset.y_train, details=tuning)
    global_batch = config.batch_size * placement.replicas
    scale = LR_SCALINGS[config.lr_scaling](placement.replicas)
    steps = pipeline.steps_per_epoch(len(dataset.x_train), global_batch)
    record = {
        "settings": dataclasses.asdict(config),
        "data": dataset.source,
        "train_examples": len(dataset.x_train),
        "test_examples": len(dataset.x_test),
        "steps_per_epoch": steps,
        "device": device,
        "jit_compile": jit,
        "precision": precision,
        "precision_measured": tuning or None,
        "strategy": {"name": placement.name, "replicas": placement.replicas,
                     "workers": placement.workers, "devices": list(placement.devices),
                     "task": placement.task, "global_batch": global_batch,
                     "learning_rate": config.learning_rate * scale},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "epochs": done,
    }
    print(f"Device: {device}, XLA {'on' if jit else 'off'}")
    print(f"Precision: {precision} ({why})")
    where = f"{placement.name} over {placement.replicas} replica(s)"
    if placement.workers > 1:
        where += f" on {placement.workers} workers; this is {placement.task}" + (
            " (the chief: it writes the outputs)" if chief else " (the chief writes the outputs)")
    elif placement.replicas > 1:
        where += f" ({', '.join(placement.devices)})"
    print(f"Strategy: {where}; global batch {global_batch} = {config.batch_size} per replica "
          f"x {placement.replicas}; learning rate {config.learning_rate * scale:g} = "
          f"{config.learning_rate:g} x {scale:g} ({config.lr_scaling} scaling)")
    print(f"Data: {dataset.source}: {len(dataset.x_train)} training and "
          f"{len(dataset.x_test)} test images, {steps} batches of {global_batch} per epoch")

    keras.utils.set_random_seed(config.seed)
    with placement.strategy.scope():
        model = model_lib.build_model(precision)
        model_lib.compile_model(model, model_lib.learning_rate(
            config.learning_rate * scale, config.lr_schedule, steps * config.epochs), jit)
        model.optimizer.build(model.trainable_variables)  # its slots too, before tf.function
    print(f"Model: {model.count_params():,} parameters; Adam, learning rate {config.learning_rate * scale:g}"
          f" ({config.lr_schedule}); writing to {workdir}/")
    if first_epoch:
        then = (f"continuing with epoch {first_epoch + 1}" if first_epoch < config.epochs
                else "finishing the run")
        print(f"Resuming the unfinished run in {workdir / BACKUP_DIR}: "
              f"{first_epoch} of {config.epochs} epochs done, {then}")

    best = max((e["test_accuracy"] / 100 for e in done), default=None)
    def make_train_data(first: int):
        return pipeline.train_dataset(dataset.x_train, dataset.y_train, global_batch, config.seed, first)

    test_data = pipeline.eval_dataset(dataset.x_test, dataset.y_test, EVAL_BATCH)
    callbacks = make_callbacks(keras, workdir, record, best, placement, config.progress == "bar")
    try:
        run_epochs(tf, keras, placement, model, make_train_data, test_data, callbacks, config, steps,
                   first_epoch, jit)
    except tf.errors.OpError as e:
        if placement.workers == 1:
            raise
        # A collective failed: another worker died or was stopped. The job resumes only
        # when every worker is started again (the chief's backup holds the last epoch).
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"a worker of the cluster failed ({type(e).__name__}: {first_line}); "
                         "start every worker again with the same flags to resume") from None

    diverged = [e["epoch"] for e in record["epochs"] if e["avg_loss"] is None]
    if diverged:  # TerminateOnNaN stopped it; the backup holds NaN weights, useless to resume
        if chief:
            remove_backup(workdir / BACKUP_DIR)
        raise InputError(f"--learning_rate={config.learning_rate:g}: training diverged in epoch "
                         f"{diverged[0]} (the loss became NaN or infinite); try a lower learning rate")
    final = model_lib.float32_copy(model)  # what is saved and evaluated: plain float32
    record["test"] = evaluate.evaluate(final, dataset.x_test, dataset.y_test)
    record["weights_fingerprints"] = weights_fingerprints(placement.strategy, model)
    prints = record["weights_fingerprints"]
    if placement.replicas > 1:
        identical = len(set(prints)) == 1
        if placement.workers > 1:  # compared across the workers too
            identical = identical and same_on_all_workers(tf, placement.strategy, prints[0])
        where = f"all {placement.replicas} replicas of the {placement.workers} workers" \
            if placement.workers > 1 else f"the {len(prints)} local replicas"
        print(f"Weights: {'identical on' if identical else 'DIFFERENT on'} {where}, "
              f"fingerprint {', '.join(sorted(set(prints)))}")
    test = record["test"]
    if chief:
        save_model_atomic(final, workdir / MODEL_FILE)
        # Which model files this history describes: the report draws its curves only for them.
        record["files_sha256"] = {name: hashlib.sha256((workdir / name).read_bytes()).hexdigest()
                                  for name in (MODEL_FILE, BEST_FILE) if (workdir / name).exists()}
        cli.write_atomic(workdir / HISTORY_FILE, json.dumps(record, indent=2) + "\n")
        remove_backup(workdir / BACKUP_DIR)
        print(f"Saved {workdir / MODEL_FILE}, {workdir / BEST_FILE} (best epoch), {workdir / HISTORY_FILE}; "
              f"TensorBoard: tensorboard --logdir {workdir / LOGS_DIR}")
    print(f"Test accuracy: {test['accuracy']:.2f}% ({test['correct']}/{test['total']} correct)")
    return record


FLAGS = flags.FLAGS


def define_flags() -> None:
    defaults = Config()
    flags.DEFINE_integer("epochs", defaults.epochs, "Passes over the training set.", lower_bound=1)
    flags.DEFINE_integer("batch_size", defaults.batch_size,
                         "Images per training step on each replica (the global batch is this x "
                         "the number of replicas).", lower_bound=1)
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
    flags.DEFINE_enum("strategy", defaults.strategy, list(distribute.STRATEGIES),
                      "tf.distribute strategy. auto: MirroredStrategy over several local GPUs "
                      "(or --cpu_replicas), MultiWorkerMirroredStrategy when TF_CONFIG names a "
                      "cluster, else the one device; one_device; mirrored; multi_worker (cluster "
                      "from the TF_CONFIG environment variable).")
    flags.DEFINE_enum("precision", defaults.precision, list(PRECISIONS),
                      "auto: the faster of float32 and mixed_bfloat16 on this machine, measured with a "
                      "few training steps (~2 s) and cached per machine (docs/training.md). The saved "
                      "model is float32 either way.")
    flags.DEFINE_integer("cpu_replicas", defaults.cpu_replicas,
                         "Split the CPU into this many logical devices and mirror over them: a "
                         "try-out of data parallelism without GPUs.", lower_bound=1)
    flags.DEFINE_enum("lr_scaling", defaults.lr_scaling, list(LR_SCALINGS),
                      "How --learning_rate grows with the replicas (the global batch is "
                      "--batch_size x replicas): linear, sqrt or none.")
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
    if FLAGS.report and distribute.is_chief(distribute.read_tf_config()):  # the chief has the model
        from mnist_keras import report

        dataset = data.take(data.load(config.data_dir, config.tfds), test_examples=config.test_examples)
        print(f"Report: {report.write_report(Path(FLAGS.model_dir) / MODEL_FILE, dataset)}")


def cli_main() -> None:
    """The `mnist-train` console script and `python -m mnist_keras.train`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
