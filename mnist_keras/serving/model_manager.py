"""Versions as TF Serving manages them: poll the base path, load, warm up, switch, unload.

A new version loads on the polling thread while the current one keeps serving; its warmup
requests are replayed; then one assignment makes it the one requests get. Versions the
policy no longer wants go UNLOADING, then END. A version that fails to load is reported
in its status and the others keep serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.errors import InputError, first_line
from mnist_keras.inference.predictor import Predictor, load_predictor

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class NotFound(LookupError):
    """No servable for (name, version): TF Serving's NOT_FOUND / HTTP 404."""


@dataclass
class VersionStatus:
    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


@dataclass
class LoadedVersion:
    """One SavedModel version, run through its predictor (inference/predictor.py), from many threads."""

    name: str
    version: int
    path: Path
    predictor: Predictor | None = None
    metadata: dict = field(default_factory=dict)  # the signatures in TF Serving's REST JSON
    signatures: Any = None  # name -> SignatureDef protobuf, for gRPC's GetModelMetadata
    batcher: object = None  # batching.Batcher when --enable_batching

    @property
    def outputs(self) -> tuple[str, ...]:
        """The signature's output names, sorted: classes, probabilities (and digit_score)."""
        return self.predictor.outputs

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self.batcher is not None:
            return self.batcher.submit(images)
        return self.call(images)

    def call(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The signature itself, unbatched: float images [N, 28, 28, 1] in [0, 1] -> every output by name."""
        return self.predictor.serve(images)


def disk_versions(base: Path) -> dict[int, Path]:
    """Integer-named sub-folders holding a saved_model.pb (others are not versions yet)."""
    if not base.is_dir():
        return {}
    return {int(p.name): p for p in base.iterdir()
            if p.name.isdigit() and p.is_dir() and (p / "saved_model.pb").is_file()}


def latest_version(base: Path) -> tuple[int, Path]:
    """The version TF Serving's default policy serves (the highest), or one line saying why there is none."""
    if not base.is_dir():
        raise InputError(f"{base}: no such folder; run mnist-export first")
    versions = disk_versions(base)
    if not versions:
        raise InputError(f"{base}: no SavedModel versions (folders named 1, 2, ... holding saved_model.pb); "
                         "run mnist-export first")
    newest = max(versions)
    return newest, versions[newest]


def _fingerprint(path: Path) -> tuple:
    """Changes while a version is still being copied in, so a failed load is retried then."""
    try:
        return tuple(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")))
    except OSError:
        return ()


def load_version(name: str, version: int, path: Path, warmup: bool = True,
                 make_batcher: Callable[[LoadedVersion], Any] | None = None, trust: bool = False) -> LoadedVersion:
    """Loads one version and replays its warmup requests; raises on any failure.

    Unless `trust`, a version whose graph has file, network or process ops is refused before any
    of it loads or runs (inference/saved_model_scan.py): a folder dropped into the base path is
    not necessarily ours."""
    import tensorflow as tf

    from mnist_keras.exporting import serving_files
    from mnist_keras.inference.classifiers import check_saved_model_dir, signature_defs, signature_metadata

    predictor = load_predictor(check_saved_model_dir(path), trust, require_score=False)
    signatures = signature_defs(path)
    loaded = LoadedVersion(name, version, path, predictor, signature_metadata(signatures), signatures)
    if warmup:
        for request in serving_files.read_warmup(path):
            unknown = set(request.inputs) - {"images"}
            if unknown:
                raise ValueError(f"warmup request has inputs {sorted(unknown)}; the signature takes images")
            loaded.call(tf.make_ndarray(request.inputs["images"]))
    if make_batcher is not None:
        loaded.batcher = make_batcher(loaded)
    return loaded


@dataclass(frozen=True)
class Policy:
    """Which versions a ModelManager serves and how it loads them."""

    specific: list[int] | None = None  # the versions to serve, else the latest N
    latest: int = 1
    poll_seconds: float = 1.0  # between looks for new versions (0: look once, at start)
    warmup: bool = True  # replay assets.extra/tf_serving_warmup_requests on load
    trust_model: bool = False  # load versions whose graph has file, network or process ops


class ModelManager:
    """One model's versions under `base`, served per `policy`."""

    def __init__(self, name: str, base: Path, policy: Policy = Policy(),
                 make_batcher: Callable[[LoadedVersion], Any] | None = None, log: Callable[[str], None] = print):
        self.name, self.base, self.policy = name, Path(base), policy
        self.specific, self.latest = policy.specific, policy.latest
        self.poll_seconds, self.warmup, self.make_batcher = policy.poll_seconds, policy.warmup, make_batcher
        self.log, self.trust_model = log, policy.trust_model
        self._serving: dict[int, LoadedVersion] = {}  # replaced whole, never changed in place
        self._status: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- What requests see -------------------------------------------------------------

    def resolve(self, name: str, version: int | str | None = None) -> LoadedVersion:
        """The version a request names, or the newest available; NotFound in TF Serving's words."""
        serving = self._serving  # one read: a switch in between cannot mix two versions
        if version is not None and not str(version).isdigit():
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        if name != self.name or not serving:
            detail = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise NotFound(f"Servable not found for request: {detail}")
        if version is None:
            return serving[max(serving)]
        if int(version) not in serving:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return serving[int(version)]

    def statuses(self, name: str, version: int | str | None = None) -> list[VersionStatus]:
        """Every version's state, newest first, or one version's; NotFound if none."""
        detail = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        status = dict(self._status)
        if name != self.name or not status:
            raise NotFound(f"Servable not found for request: {detail}")
        if version is not None:
            if not str(version).isdigit() or int(version) not in status:
                raise NotFound(f"Servable not found for request: {detail}")
            return [status[int(version)]]
        return [status[v] for v in sorted(status, reverse=True)]

    # --- Polling -----------------------------------------------------------------------

    def wanted(self, on_disk: dict[int, Path]) -> list[int]:
        candidates = [v for v in sorted(on_disk) if v not in self._failed
                      or self._failed[v] != _fingerprint(on_disk[v])]
        if self.specific:
            return [v for v in candidates if v in self.specific]
        return candidates[-self.latest:]

    def poll_once(self) -> None:
        """One pass: load what the policy wants and is not loaded, then unload the rest."""
        on_disk = disk_versions(self.base)
        wanted = self.wanted(on_disk)
        for version in wanted:
            if version not in self._serving:
                self._load(version, on_disk[version])
        keep = set(wanted) & set(self._serving)
        if not keep:  # nothing wanted loaded (all failed): keep serving what we have
            return
        for version in sorted(set(self._serving) - keep):
            self._unload(version)

    def _load(self, version: int, path: Path) -> None:
        self._status[version] = VersionStatus(version, LOADING)
        started = time.perf_counter()
        fingerprint = _fingerprint(path)  # before loading: a copy finishing meanwhile is retried
        try:
            loaded = load_version(self.name, version, path, self.warmup, self.make_batcher, self.trust_model)
        except Exception as e:  # any failure: report it, keep serving the others
            self._failed[version] = fingerprint
            message = first_line(e) if first_line(e).startswith(str(path)) else f"{path}: {first_line(e)}"
            self._status[version] = VersionStatus(version, END, "UNKNOWN", message)
            self.log(f"Version {version} of {self.name} failed to load: {message}")
            return
        self._failed.pop(version, None)
        self._serving = {**self._serving, version: loaded}  # the switch: one assignment
        self._status[version] = VersionStatus(version, AVAILABLE)
        self.log(f"Serving version {version} of {self.name} ({path}), loaded in "
                 f"{time.perf_counter() - started:.1f} s")

    def _unload(self, version: int) -> None:
        self._status[version] = VersionStatus(version, UNLOADING)
        loaded = self._serving[version]
        self._serving = {v: s for v, s in self._serving.items() if v != version}
        if loaded.batcher is not None:
            loaded.batcher.close()  # lets requests already queued finish
        self._status[version] = VersionStatus(version, END)
        self.log(f"Unloaded version {version} of {self.name}")

    def start(self) -> None:
        """Loads what is there now (an error if nothing can be served), then polls in the background."""
        self.poll_once()
        if not self._serving:
            failures = [s.error_message for s in self._status.values() if s.error_message]
            raise InputError(failures[-1] if failures else
                             f"{self.base}: no SavedModel versions (folders 1, 2, ... with saved_model.pb)"
                             + (f" among {self.specific}" if self.specific else "")
                             + "; run mnist-export first")
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)
            self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception as e:  # a bad poll (a folder vanishing) must not end polling
                self.log(f"Polling {self.base} failed: {first_line(e)}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for loaded in self._serving.values():
            if loaded.batcher is not None:
                loaded.batcher.close()


def read_model_config(path: Path) -> tuple[str, Path, list[int] | None, int]:
    """models.config (ModelServerConfig text) -> (name, base_path, specific versions, latest N)."""
    from tensorflow_serving.config import model_server_config_pb2

    from mnist_keras.serving.protos import read_text_proto

    config = read_text_proto(path, model_server_config_pb2.ModelServerConfig(), "model_config_file")
    models = config.model_config_list.config
    if len(models) != 1:
        raise InputError(f"--model_config_file={path}: {len(models)} models; this server serves exactly one")
    model = models[0]
    policy = model.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        raise InputError(f"--model_config_file={path}: version policy `all` is not supported; "
                         "use latest or specific")
    specific = list(policy.specific.versions) if kind == "specific" else None
    latest = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    base = Path(model.base_path)
    if not base.exists() and (path.parent / base).is_dir():
        base = path.parent / base  # relative to the config file when not to the working folder
    elif not base.exists() and base.name == path.parent.name:
        base = path.parent  # export's config names the container's path; it sits in the base path
    return model.name, base, specific, latest
