"""`--precision=auto`: the precision this machine trains faster in, measured, not read from its flags.

A CPU that lists bfloat16 instructions can still run bfloat16 slower than float32 (no AMX,
an older core, a VM), so each candidate runs a few real training steps of this model
(its build, fused Adam, the training loop's step, the input pipeline), the candidates
interleaved round after round so that a stall of the machine hits them alike; the one with
the lower median time per step wins. The decision is cached per machine (CPU or GPU model,
the flags that matter, TensorFlow's version, batch, replicas, XLA), so the cost is paid once.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras import files
from mnist_keras.files import CACHE_ENV, cache_dir  # noqa: F401 (CACHE_ENV: the tests set it)

CACHE_FORMAT = 1  # part of the key: a new way of measuring measures again
# CPU features that change which precision is fast; the rest of /proc/cpuinfo's flags do not.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")
# Environment variables that change how fast TensorFlow's kernels run: part of the key.
ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS",
               "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD")
ROUNDS = 7  # interleaved rounds; the median of 7 ignores up to 3 stalled ones
STEPS = 3  # training steps per timed call

# (precision, seconds of CPU time, seconds of wall time) per step, medians over the rounds
Figures = dict[str, dict[str, float]]
Measure = Callable[[list[str]], Figures]


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_description() -> dict:
    """The CPU's model name and the flags of CPU_FLAGS it has; cores this process may use."""
    info = _cpuinfo()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or platform.machine())
    flags_line = next((line for line in info.splitlines() if line.startswith("flags")), "").split()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": name, "cpu_flags": [f for f in CPU_FLAGS if f in flags_line], "cores": cores}


@dataclasses.dataclass(frozen=True, eq=False)
class Measuring:
    """The run a measurement stands for: the settings that change which precision is faster (and the
    cache key), the strategy it trains under, the pictures it trains on (None: the shipped MNIST)."""

    batch_size: int = 64
    replicas: int = 1
    workers: int = 1
    jit: bool = False
    strategy: Any = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None


def gpu_description() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0])
    return {"gpu": details.get("device_name", gpus[0].name), "gpus": len(gpus),
            "compute_capability": list(details.get("compute_capability", (0, 0)))}


def candidates(on_gpu: bool) -> list[str]:
    """float32 and mixed_bfloat16; on a GPU bfloat16 only from compute capability 8.0 (Ampere).

    mixed_float16 is left out: it needs loss scaling, which the training loop does not do.
    """
    if on_gpu and tuple(gpu_description()["compute_capability"]) < (8, 0):
        return ["float32"]
    return ["float32", "mixed_bfloat16"]


def cache_key(context: dict) -> str:
    return hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()[:24]


def read_cached(context: dict) -> dict | None:
    """The cached decision for this context, or None: a missing, damaged or foreign file alike."""
    path = cache_dir() / f"precision-{cache_key(context)}.json"
    try:
        entry = json.loads(path.read_text())
        figures = entry["figures"]
        valid = (entry["context"] == context and entry["precision"] in figures
                 and all(float(f["cpu"]) >= 0 and float(f["wall"]) >= 0 for f in figures.values()))
        return entry if valid else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_cached(context: dict, entry: dict) -> str | None:
    """Writes the decision; None when it worked, else why not (the run goes on uncached)."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files.write_atomic(folder / f"precision-{cache_key(context)}.json", json.dumps(entry, indent=2) + "\n")
    except OSError as e:
        return f"{folder}: {e.strerror or e}"
    return None


def interleaved(runs: dict[str, Callable[[], object]], rounds: int = ROUNDS, per_call: int | dict[str, int] = 1,
                clocks: tuple[Callable[[], float], Callable[[], float]] = (time.process_time, time.perf_counter),
                ) -> Figures:
    """Each run called once per round, A B A B ...: medians of CPU and wall seconds per step.

    A stall of the machine lengthens a round or two of every candidate alike, and the
    median leaves them out; per_call: training steps one call runs (per run, or for all).
    """
    cpu_clock, wall_clock = clocks
    steps = per_call if isinstance(per_call, dict) else dict.fromkeys(runs, per_call)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            cpu, wall = cpu_clock(), wall_clock()
            run()
            times[name].append(((cpu_clock() - cpu) / steps[name], (wall_clock() - wall) / steps[name]))
    return {name: {"cpu": _median([t[0] for t in ts]), "wall": _median([t[1] for t in ts])}
            for name, ts in times.items()}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def training_steps(precision: str, batch_size: int, strategy: Any, jit: bool,
                   images: np.ndarray, labels: np.ndarray) -> Callable[[], object]:
    """A call that runs STEPS real training steps of this model in `precision` (traced and run once)."""
    import tensorflow as tf

    from mnist_keras.data import pipeline
    from mnist_keras.training import model as model_lib
    from mnist_keras.training.loop import make_train_steps  # the real step

    with strategy.scope():
        model = model_lib.build_model(precision)
        model_lib.compile_model(model, 1e-3, jit)
        model.optimizer.build(model.trainable_variables)
    global_batch = batch_size * strategy.num_replicas_in_sync
    stream = pipeline.train_dataset(images, labels, global_batch, seed=0)
    iterator = iter(strategy.experimental_distribute_dataset(stream))
    train_steps = make_train_steps(strategy, model, jit)
    steps = tf.constant(STEPS)

    def run() -> object:
        return train_steps(iterator, steps).numpy()

    run()  # traced and warmed before any timing
    return run


def measure_precisions(names: list[str], measuring: Measuring) -> Figures:
    """Per-step CPU and wall seconds of each precision, interleaved in this process, on one worker's
    strategy and a few batches of the pictures."""
    import tensorflow as tf

    strategy = measuring.strategy if measuring.strategy is not None and measuring.workers == 1 \
        else tf.distribute.get_strategy()
    images, labels = measuring.images, measuring.labels
    if images is None:
        from mnist_keras.data import datasets

        mnist = datasets.load()
        images, labels = mnist.x_train, mnist.y_train
    count = min(len(images), measuring.batch_size * strategy.num_replicas_in_sync * STEPS * 4)
    runs = {name: training_steps(name, measuring.batch_size, strategy, measuring.jit, images[:count], labels[:count])
            for name in names}
    return interleaved(runs, per_call=STEPS)


def decide(figures: Figures, clock: str) -> str:
    """The faster precision by `clock` ("cpu" or "wall"); a tie keeps float32, the plainer one."""
    return min(figures, key=lambda name: (figures[name][clock], name != "float32"))


def describe(precision: str, figures: Figures, clock: str, how: str) -> str:
    """The choice in words: "measured A ms a step, against B ms in float32, CPU time; <how>"."""
    others = [f"{figures[name][clock] * 1e3:.1f} ms in {name}" for name in figures if name != precision]
    against = f", against {', '.join(others)}" if others else " (the only candidate)"
    unit = "CPU time" if clock == "cpu" else "wall time"
    return f"measured {figures[precision][clock] * 1e3:.1f} ms a step{against}, {unit}; {how}"


def agree_across_workers(strategy: Any, figures: Figures) -> Figures:
    """The workers' mean figures, the same on all: each worker's own measurement could pick another."""
    import tensorflow as tf

    names = sorted(figures)
    values = np.array([[figures[n]["cpu"], figures[n]["wall"]] for n in names], np.float64)
    share = values / strategy.num_replicas_in_sync
    per_replica = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant(share))
    mean = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()
    return {n: {"cpu": float(mean[i][0]), "wall": float(mean[i][1])} for i, n in enumerate(names)}


def auto_precision(on_gpu: bool, measuring: Measuring | None = None, measure: Measure | None = None,
                   details: dict | None = None) -> tuple[str, str]:
    """The faster precision here, measured (or cached): (precision, the figures in words).

    measure(names) -> figures replaces the real measurement (tests); details, when given,
    receives what history.json records: the figures, the clock, and whether they were cached.
    On several workers the local figures (measured on one device) are averaged over the
    workers so that all choose alike.
    """
    measuring = measuring or Measuring()
    names = candidates(on_gpu)
    clock = "wall" if on_gpu else "cpu"  # GPU work is not this process's CPU time
    context = machine_context(on_gpu, measuring, names)
    entry = read_cached(context)
    if entry is None:
        entry, how = measure_and_cache(context, names, clock, measure or (
            lambda names: measure_precisions(names, measuring)))
    else:
        how = f"cached {entry.get('measured', '')}".rstrip()
    figures = entry["figures"]
    precision = entry["precision"]
    if measuring.workers > 1 and measuring.strategy is not None:
        figures = agree_across_workers(measuring.strategy, figures)
        precision = decide(figures, clock)
        how += f"; mean of {measuring.workers} workers"
    if details is not None:
        details.update({"figures": figures, "clock": clock, "how": how, "cache": str(cache_dir())})
    return precision, describe(precision, figures, clock, how)


def machine_context(on_gpu: bool, measuring: Measuring, names: list[str]) -> dict:
    """What the decision depends on, the cache key: the device, the libraries, the run's settings."""
    import keras
    import tensorflow as tf

    return {**(gpu_description() if on_gpu else cpu_description()),
            "tensorflow": tf.__version__, "keras": keras.__version__, "batch_size": measuring.batch_size,
            "replicas": measuring.replicas, "workers": measuring.workers, "jit": measuring.jit, "candidates": names,
            "format": CACHE_FORMAT,
            "environment": {v: os.environ[v] for v in ENVIRONMENT if v in os.environ}}


def measure_and_cache(context: dict, names: list[str], clock: str, measure: Measure) -> tuple[dict, str]:
    """Measures now and caches the decision: (the cache entry, how it was come by, in words)."""
    start = time.perf_counter()
    figures = measure(names)
    entry = {"context": context, "precision": decide(figures, clock), "clock": clock, "figures": figures,
             "measured": datetime.date.today().isoformat(),
             "measuring_seconds": round(time.perf_counter() - start, 2)}
    problem = write_cached(context, entry)
    how = f"measured now in {entry['measuring_seconds']:.1f} s" + (
        f"; not cached: {problem}" if problem else "; cached for next time")
    return entry, how
