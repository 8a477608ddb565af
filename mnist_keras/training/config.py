"""One training run's settings, checked before anything slow starts."""

from __future__ import annotations

import dataclasses
import math

from mnist_keras.errors import InputError
from mnist_keras.training import distribute

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
# How the learning rate grows with the number of replicas (the global batch grows with it).
LR_SCALINGS = {"linear": lambda replicas: replicas, "sqrt": math.sqrt, "none": lambda replicas: 1}
JIT_COMPILE = ("auto", "true", "false")
LR_SCHEDULES = ("cosine", "constant")
PROGRESS = ("bar", "none")


@dataclasses.dataclass(frozen=True)
class Config:
    """One run's settings; all but those in NOT_RESUME_KEYS must match for a run to resume.

    validation_examples: the last N of the training images are held out to choose best.keras
    and to report each epoch (0: none, then no best.keras); train_examples then takes the
    first N of the images that remain, test_examples the first N of the test set.
    written_share: with the shipped MNIST, digits in other styles (typed, drawn, reshaped;
    data/written.py), this share of the training images in number, join them; 0 trains on
    MNIST alone, as the seed did.
    reshape_share: with those digits, this share of each batch is also turned, sheared and
    zoomed afresh (data/pipeline.py's reshape).
    """

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    seed: int = 0
    data_dir: str | None = None
    tfds: str | None = None
    train_examples: int = 0
    written_share: float = 0.18
    reshape_share: float = 0.5
    negative_share: float = 0.0
    validation_examples: int = 5000
    test_examples: int = 0
    jit_compile: str = "auto"
    strategy: str = "auto"
    precision: str = "auto"
    cpu_replicas: int = 1
    lr_scaling: str = "linear"
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
    for name in ("train_examples", "validation_examples", "test_examples"):
        if getattr(config, name) < 0:
            raise InputError(f"--{name}={getattr(config, name)}: must be 0 or more")
    if not 0 <= config.written_share <= 1:  # NaN fails this too
        raise InputError(f"--written_share={config.written_share}: must be between 0 and 1")
    if not 0 <= config.reshape_share <= 1:
        raise InputError(f"--reshape_share={config.reshape_share}: must be between 0 and 1")
    if not 0 <= config.negative_share <= 1:
        raise InputError(f"--negative_share={config.negative_share}: must be between 0 and 1")
    if config.negative_share and not config.written_share:
        raise InputError(f"--negative_share={config.negative_share:g}: non-digits join only with the digits in other "
                         "styles; set --written_share above 0, or --negative_share=0")
    if config.cpu_replicas < 1:
        raise InputError(f"--cpu_replicas={config.cpu_replicas}: must be at least 1")
    if config.lr_schedule not in LR_SCHEDULES:
        raise InputError(f"--lr_schedule={config.lr_schedule}: choose from {', '.join(LR_SCHEDULES)}")
    if config.jit_compile not in JIT_COMPILE:
        raise InputError(f"--jit_compile={config.jit_compile}: choose from {', '.join(JIT_COMPILE)}")
    if config.strategy not in distribute.STRATEGIES:
        raise InputError(f"--strategy={config.strategy}: choose from {', '.join(distribute.STRATEGIES)}")
    if config.precision not in PRECISIONS:
        raise InputError(f"--precision={config.precision}: choose from {', '.join(PRECISIONS)}")
    if config.lr_scaling not in LR_SCALINGS:
        raise InputError(f"--lr_scaling={config.lr_scaling}: choose from {', '.join(LR_SCALINGS)}")
