"""The run folder (--model_dir): what a run writes, how a killed run resumes, what a new run clears.

    mnist.keras    the trained model        best.keras    the best epoch on the validation split
    history.json   per-epoch figures, test metrics, settings
    logs/          TensorBoard               backup/       while a run is unfinished: its resume point
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from mnist_keras import files
from mnist_keras.errors import InputError
from mnist_keras.training.config import NOT_RESUME_KEYS, Config

MODEL_FILE = "mnist.keras"
BEST_FILE = "best.keras"
HISTORY_FILE = "history.json"
LOGS_DIR = "logs"
BACKUP_DIR = "backup"
# What Keras' BackupAndRestore (double_checkpoint=True) writes into BACKUP_DIR.
BACKUP_FILES = ("latest.weights.h5", "latest.weights.h5.bkp",
                "training_metadata.json", "training_metadata.json.bkp")


def resume_point(workdir: Path, config: Config) -> tuple[int, list[dict]]:
    """The number of finished epochs in an unfinished run in workdir, and their history.

    A run that cannot continue under these settings is an error, not a silent restart:
    the user asked for this folder and may want the hours already spent in it.
    """
    finished = backed_up_epochs(workdir / BACKUP_DIR)
    if finished is None:
        return 0, []
    try:
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


def backed_up_epochs(backup_dir: Path) -> int | None:
    """The epochs Keras' backup holds; None without one. Keras writes training_metadata.json in place,
    so a kill can cut it short: then the previous backup (double_checkpoint's .bkp files) is put back,
    as Keras' own restore does for cut-short weights, or, at the first epoch's, there is none."""
    metadata = backup_dir / "training_metadata.json"
    previous = (backup_dir / "training_metadata.json.bkp", backup_dir / "latest.weights.h5.bkp")
    if not metadata.exists():
        return None
    epochs = _epochs(metadata)
    if epochs is None and all(path.exists() for path in previous):
        files.write_atomic(metadata, previous[0].read_bytes())
        files.write_atomic(backup_dir / "latest.weights.h5", previous[1].read_bytes())
        epochs = _epochs(metadata)
    if epochs is None:
        remove_backup(backup_dir)  # nothing whole to resume from: the run starts over
    return epochs


def _epochs(metadata: Path) -> int | None:
    """training_metadata.json's epoch; None when a kill cut the file short."""
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (ValueError, KeyError, TypeError):
        return None
    except OSError as e:
        raise InputError(f"{metadata}: unreadable backup of an unfinished run ({e.strerror}); "
                         "start over with --noresume") from None


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
    (workdir / BEST_FILE).unlink(missing_ok=True)  # the last run's best; this run chooses its own


def remove_partial_files(workdir: Path) -> None:
    """Temporary files of a save that a SIGKILL interrupted (files.save_atomic's names)."""
    for path in workdir.glob(".*.partial.keras"):
        path.unlink(missing_ok=True)


def check_folder(workdir: Path) -> None:
    """A --model_dir that is a file is one line, before the data is loaded (seconds with the written digits)."""
    if workdir.exists() and not workdir.is_dir():
        raise InputError(f"--model_dir={workdir}: exists and is not a folder")


def prepare(workdir: Path, config: Config) -> tuple[int, list[dict]]:
    """Creates workdir (or finds the unfinished run in it): (finished epochs, their history)."""
    check_folder(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--model_dir={workdir}: cannot create it: {e.strerror}") from None
    from mnist_keras import cli

    cli.check_writable_parent(workdir / MODEL_FILE)
    first_epoch, done = resume_point(workdir, config) if config.resume else (0, [])
    if first_epoch == 0:
        start_fresh(workdir)
    remove_partial_files(workdir)
    return first_epoch, done


def save_model(model: Any, path: Path) -> None:  # a keras.Model
    """model.save() under a temporary name, then a rename: a kill never leaves half a model."""
    files.save_atomic(path, model.save)


def write_history(workdir: Path, record: dict) -> None:
    files.write_atomic(workdir / HISTORY_FILE, json.dumps(record, indent=2) + "\n")


def files_sha256(workdir: Path) -> dict[str, str]:
    """Which model files a history describes: the report draws its curves only for them."""
    return {name: files.sha256_file(workdir / name)
            for name in (MODEL_FILE, BEST_FILE) if (workdir / name).exists()}
