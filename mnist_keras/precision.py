"""Which device trains, and in which precision: a seam that a measured choice can replace."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType


def choose_precision(requested: str, tf: ModuleType | None, on_gpu: bool) -> tuple[str, str]:
    """(precision, reason): mixed_bfloat16 where the hardware computes in bfloat16 natively, else float32.

    Emulated bfloat16 is slower than float32; float16 would need loss scaling, not done here.
    The speeds measured are in docs/benchmarks.md.
    """
    if requested != "auto":
        return requested, "as asked"
    if on_gpu:
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        if details.get("compute_capability", (0, 0)) >= (8, 0):  # Ampere on
            return "mixed_bfloat16", "this GPU computes in bfloat16"
        return "float32", "this GPU predates bfloat16"
    flags_line = next((line for line in _cpuinfo().splitlines() if line.startswith("flags")), "")
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags_line.split()]
    if native:
        return "mixed_bfloat16", f"this CPU has {' and '.join(f.upper() for f in native)}"
    return "float32", "this CPU has no bfloat16 instructions"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def describe_device(tf: ModuleType) -> tuple[str, bool]:
    """Which device Keras will use, and whether it is a GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)}; {len(gpus)} visible)", True
    return f"CPU ({os.cpu_count()} cores)", False


def choose_jit(requested: str, on_gpu: bool) -> bool:
    """XLA where it pays: it fuses this small model's kernels on a GPU and slows CPU epochs
    (docs/benchmarks.md)."""
    return {"auto": on_gpu, "true": True, "false": False}[requested]
