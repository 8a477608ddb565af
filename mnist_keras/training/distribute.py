"""Which tf.distribute strategy trains the model: one device, local GPUs, or many machines.

    --strategy=auto          several local GPUs: MirroredStrategy; a multi-task TF_CONFIG:
                             MultiWorkerMirroredStrategy; otherwise the one default device
    --strategy=one_device    OneDeviceStrategy on the first GPU, else the CPU
    --strategy=mirrored      MirroredStrategy over the local GPUs (or --cpu_replicas CPUs)
    --strategy=multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG

TF_CONFIG is TensorFlow's standard: {"cluster": {"worker": ["host1:port", "host2:port"]},
"task": {"type": "worker", "index": 0}}. Worker 0 (or the "chief" task, if the cluster
names one) is the chief: it alone writes checkpoints, logs and the final model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

from mnist_keras.errors import InputError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
TASK_TYPES = ("chief", "worker")  # the tasks MultiWorkerMirroredStrategy runs


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where this process trains, and what it may write."""

    strategy: object  # tf.distribute.Strategy
    name: str
    devices: tuple[str, ...]
    replicas: int  # in sync, over all workers
    workers: int
    task: str  # e.g. "worker 1"; "" when there is one process
    is_chief: bool


def read_tf_config(environ: Mapping[str, str] = os.environ) -> dict | None:
    """TF_CONFIG, checked: one line naming what is wrong, rather than a hang or a traceback."""
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise InputError(f"TF_CONFIG: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise InputError("TF_CONFIG: must be a JSON object with \"cluster\" and \"task\"")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise InputError("TF_CONFIG: no \"cluster\" ({\"worker\": [\"host:port\", ...]})")
    for kind, addresses in cluster.items():
        if kind not in TASK_TYPES:
            raise InputError(f"TF_CONFIG: cluster has {kind!r} tasks; multi-worker training "
                             f"runs only {' and '.join(map(repr, TASK_TYPES))} tasks")
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses)):
            raise InputError(f"TF_CONFIG: cluster[{kind!r}] must be a list of \"host:port\" strings")
    if not isinstance(task, dict):
        raise InputError("TF_CONFIG: no \"task\" (this process's {\"type\": \"worker\", \"index\": N})")
    kind, index = task.get("type"), task.get("index")
    if kind not in TASK_TYPES:
        raise InputError(f"TF_CONFIG: task type {kind!r} is unknown; use "
                         f"{' or '.join(map(repr, TASK_TYPES))}")
    if kind not in cluster:
        raise InputError(f"TF_CONFIG: task type {kind!r} is not in the cluster")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise InputError(f"TF_CONFIG: task index {index!r} is not one of the cluster's "
                         f"{len(cluster[kind])} {kind} task(s) (0-{len(cluster[kind]) - 1})")
    if len(cluster.get("chief", [])) > 1:
        raise InputError("TF_CONFIG: a cluster has at most one chief")
    return config


def is_chief(tf_config: dict | None) -> bool:
    if tf_config is None:
        return True
    kind, index = tf_config["task"]["type"], tf_config["task"]["index"]
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in tf_config["cluster"])


def choose(name: str, tf_config: dict | None, gpus: int, cpu_replicas: int) -> str:
    """What --strategy=auto means here."""
    if name != "auto":
        return name
    if tf_config and sum(len(a) for a in tf_config["cluster"].values()) > 1:
        return "multi_worker"
    return "mirrored" if gpus > 1 or cpu_replicas > 1 else "default"


def place(name: str, cpu_replicas: int = 1) -> Placement:
    """Creates the strategy. Must run before TensorFlow first touches a device."""
    tf_config = read_tf_config()
    if name not in STRATEGIES:
        raise InputError(f"--strategy={name}: choose from {', '.join(STRATEGIES)}")
    import tensorflow as tf

    # Listing physical devices leaves the runtime unstarted, as MultiWorkerMirroredStrategy
    # and logical devices need; listing logical ones would start it.
    chosen = choose(name, tf_config, len(tf.config.list_physical_devices("GPU")), cpu_replicas)
    if chosen == "multi_worker" and tf_config is None:
        raise InputError("--strategy=multi_worker: TF_CONFIG is not set (see docs/distributed.md: "
                         "training on several machines)")
    if chosen != "multi_worker" and tf_config and name != "auto":
        raise InputError(f"--strategy={name}: TF_CONFIG describes a cluster; unset it, or use "
                         "--strategy=multi_worker")
    if cpu_replicas > 1:  # split the CPU into logical devices: data parallelism to try out
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if chosen == "multi_worker" else None
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if chosen == "multi_worker":
        task = tf_config["task"]
        workers = sum(len(a) for a in tf_config["cluster"].values())
        devices = tuple(gpus or cpus[:1])
        return Placement(strategy, "MultiWorkerMirroredStrategy", devices,
                         strategy.num_replicas_in_sync, workers,
                         f"{task['type']} {task['index']}", is_chief(tf_config))
    if chosen == "mirrored":
        devices = tuple(gpus or cpus)
        strategy = tf.distribute.MirroredStrategy(list(devices))
        return Placement(strategy, "MirroredStrategy", devices, strategy.num_replicas_in_sync, 1, "", True)
    if chosen == "one_device":
        device = (gpus or cpus)[0]
        return Placement(tf.distribute.OneDeviceStrategy(device), "OneDeviceStrategy", (device,), 1, 1, "", True)
    device = (gpus or cpus)[0]
    return Placement(tf.distribute.get_strategy(), "default strategy", (device,), 1, 1, "", True)
