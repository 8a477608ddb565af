"""Which device trains, and in which precision (measured: autotune.py), and whether XLA compiles."""

from __future__ import annotations

import os
from typing import Any


def choose_precision(requested: str, on_gpu: bool, measuring: Any = None, **options: Any) -> tuple[str, str]:
    """(precision, reason): the one asked for; auto: the faster on this machine, by measurement.

    A CPU's flags do not tell: bfloat16 was faster on CPUs with AMX and on a Zen 4 with
    AVX512_BF16 alone, slower on a Xeon with AVX512_BF16 but no AMX (docs/benchmarks.md).
    measuring: an autotune.Measuring (the run's settings); options: measure, details
    (see autotune.auto_precision).
    """
    if requested != "auto":
        return requested, "as asked"
    from mnist_keras.training import autotune

    return autotune.auto_precision(on_gpu, measuring, **options)


def describe_device() -> tuple[str, bool]:
    """Which device Keras will use, and whether it is a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)}; {len(gpus)} visible)", True
    return f"CPU ({os.cpu_count()} cores)", False


def choose_jit(requested: str, on_gpu: bool) -> bool:
    """XLA where it pays: it fuses this small model's kernels on a GPU and slows CPU epochs
    (docs/benchmarks.md)."""
    return {"auto": on_gpu, "true": True, "false": False}[requested]
