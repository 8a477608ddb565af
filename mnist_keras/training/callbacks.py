"""What happens at the end of each epoch: its line and history entry, the best checkpoint, backups.

Imports Keras: loaded by train.train_and_evaluate only after the flags and data are checked.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras

from mnist_keras.training import distribute, run_folder


def finite(value: float) -> float | None:
    """A float for history.json, which stays strict JSON: NaN and infinity become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * float(value)


class EpochReport(keras.callbacks.Callback):
    """Prints each epoch's line and appends its entry to the record (written by the chief).

    logs carry val_* only when there is a validation split; without one those keys are null.
    """

    def __init__(self, record: dict, workdir: Path, is_chief: bool):
        super().__init__()
        self.record, self.workdir, self.is_chief = record, workdir, is_chief
        self.wall = self.cpu = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        entry = {
            "epoch": epoch + 1,
            "avg_loss": finite(logs["avg_loss"]),
            "loss": finite(logs["loss"]),
            "accuracy": 100.0 * float(logs["accuracy"]),
            "val_avg_loss": finite(logs["val_avg_loss"]) if "val_avg_loss" in logs else None,
            "val_accuracy": percent(logs.get("val_accuracy")),
            "learning_rate": float(logs["learning_rate"]),
            "wall_seconds": round(time.perf_counter() - self.wall, 3),
            "cpu_seconds": round(time.process_time() - self.cpu, 3),
        }
        self.record["epochs"].append(entry)
        if self.is_chief:
            run_folder.write_history(self.workdir, self.record)
        validation = ("" if entry["val_accuracy"] is None
                      else f"validation accuracy {entry['val_accuracy']:.2f}%, ")
        print(f"Epoch {entry['epoch']}/{self.record['settings']['epochs']}: "
              f"average loss {logs['avg_loss']:.4f} ({self.record['steps_per_epoch']} batches), "
              f"{validation}{entry['wall_seconds']:.1f} s ({entry['cpu_seconds']:.1f} CPU-s)", flush=True)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model (as float32, atomically) after each epoch that beats the best validation
    accuracy so far; ModelCheckpoint would save the mixed-precision model as is."""

    def __init__(self, path: Path, best: float | None):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(logs["avg_loss"]):
            return  # a diverged model is nobody's best
        if self.best is None or logs["val_accuracy"] > self.best:
            self.best = logs["val_accuracy"]
            from mnist_keras.training.model import float32_copy

            run_folder.save_model(float32_copy(self.model), self.path)


def make_callbacks(workdir: Path, record: dict, best_so_far: float | None,
                   placement: distribute.Placement, progress: bool, validation: bool) -> list:
    """Keras callbacks: per-epoch report, best checkpoint, TensorBoard, and backup for resume.

    Every process prints its epoch lines; only the chief writes history.json, best.keras,
    the TensorBoard logs and the backup (the other workers take their state from it when
    a run resumes, see loop.broadcast_from_chief). The report (which writes
    history.json) runs before the backup, so a kill between the two makes the run redo that
    epoch rather than lose its line from the history. Without a validation split there is
    nothing to choose a best epoch by, so no best.keras.
    """
    callbacks = [keras.callbacks.ProgbarLogger()] if progress else []
    callbacks += [EpochReport(record, workdir, placement.is_chief), keras.callbacks.TerminateOnNaN()]
    if placement.is_chief:
        if validation:
            callbacks.append(BestCheckpoint(workdir / run_folder.BEST_FILE, best_so_far))
        callbacks += [
            keras.callbacks.TensorBoard(log_dir=str(workdir / run_folder.LOGS_DIR), write_graph=False),
            # Deleted by run_folder.remove_backup() once the model is saved, not by Keras when
            # training ends (which would also delete the whole folder, whatever else it held).
            keras.callbacks.BackupAndRestore(str(workdir / run_folder.BACKUP_DIR), double_checkpoint=True,
                                             delete_checkpoint=False),
        ]
    return callbacks
