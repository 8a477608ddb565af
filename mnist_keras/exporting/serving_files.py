"""The files TF Serving reads beside a SavedModel: warmup requests, configs, compose.yaml.

A version folder gets `assets.extra/tf_serving_warmup_requests` (a TFRecord of
PredictionLog, replayed when the version loads, so the first user request is not the slow
one). The base path gets models.config, batching.config, monitoring.config and
compose.yaml, in TF Serving's own text formats, pinning the tensorflow/serving image to the
TensorFlow version that exported the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.data.datasets import scale_images
from mnist_keras.files import write_atomic

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 8, 32)
MAX_WARMUP_RECORDS = 1000  # TF Serving reads no more than this many
CONTAINER_BASE = "/models"  # where compose.yaml mounts the base path's parent
METRICS_PATH = "/monitoring/prometheus/metrics"
BATCHING = {"max_batch_size": 32, "batch_timeout_micros": 2000, "max_enqueued_batches": 100,
            "num_batch_threads": 2}


def predict_request(images: np.ndarray, model_name: str = "mnist") -> Any:
    """A PredictRequest holding float32 images [N, 28, 28, 1] under the `images` input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.asarray(images, np.float32)))
    return request


def write_warmup(version_dir: Path, images: np.ndarray, model_name: str = "mnist",
                 batch_sizes: tuple[int, ...] = WARMUP_BATCH_SIZES) -> Path:
    """One PredictionLog per batch size, of real test digits (uint8 [N, 28, 28]) scaled to [0, 1]."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    if len(batch_sizes) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(batch_sizes)} warmup records; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    path = version_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = scale_images(images)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for size in batch_sizes:
            batch = np.resize(scaled, (size, *scaled.shape[1:]))  # repeats if fewer images
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(batch, model_name)))
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: Path) -> list:
    """The PredictRequests of a version's warmup file ([] if it has none)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = version_dir / WARMUP_FILE
    if not path.is_file():
        return []
    requests = []
    for i, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
        if i >= MAX_WARMUP_RECORDS:
            break
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: record {i} is {log.WhichOneof('log_type')}; only predict_log is replayed")
        requests.append(log.predict_log.request)
    return requests


def model_config_text(name: str, base_path: str, versions: list[int] | None = None) -> str:
    """A ModelServerConfig: one model, the latest version, or `specific` ones if given."""
    policy = ("latest { num_versions: 1 }" if not versions else
              "specific { " + " ".join(f"versions: {v}" for v in versions) + " }")
    return (f'model_config_list {{\n  config {{\n    name: "{name}"\n    base_path: "{base_path}"\n'
            f'    model_platform: "tensorflow"\n    model_version_policy {{ {policy} }}\n  }}\n}}\n')


def batching_config_text(parameters: dict[str, int] | None = None) -> str:
    """BatchingParameters (session_bundle_config.proto), each value an Int64Value."""
    parameters = BATCHING if parameters is None else parameters
    return "".join(f"{key} {{ value: {value} }}\n" for key, value in parameters.items())


def monitoring_config_text(path: str = METRICS_PATH) -> str:
    """A MonitoringConfig: TF Serving exports Prometheus metrics at path."""
    return f'prometheus_config {{\n  enable: true\n  path: "{path}"\n}}\n'


def compose_text(base: Path, tf_version: str) -> str:
    """compose.yaml in the base path's parent: the base path and its configs, mounted read-only."""
    folder = base.name
    return f"""# docker compose -f {base / 'compose.yaml'} up
# TF Serving {tf_version}, the TensorFlow version that exported this model.
services:
  serving:
    image: tensorflow/serving:{tf_version}
    ports: ["8500:8500", "8501:8501"]
    volumes: ["./:{CONTAINER_BASE}/{folder}:ro"]
    command:
      - --port=8500
      - --rest_api_port=8501
      - --model_config_file={CONTAINER_BASE}/{folder}/models.config
      - --file_system_poll_wait_seconds=2
      - --enable_batching
      - --batching_parameters_file={CONTAINER_BASE}/{folder}/batching.config
      - --monitoring_config_file={CONTAINER_BASE}/{folder}/monitoring.config
"""


def write_configs(base: Path, name: str = "mnist", tf_version: str | None = None) -> list[Path]:
    """models.config, batching.config, monitoring.config and compose.yaml in the base path.

    models.config names the container's path ({CONTAINER_BASE}/<folder>), as compose mounts it.
    """
    if tf_version is None:
        import tensorflow as tf

        tf_version = tf.__version__
    texts = {
        "models.config": model_config_text(name, f"{CONTAINER_BASE}/{base.name}"),
        "batching.config": batching_config_text(),
        "monitoring.config": monitoring_config_text(),
        "compose.yaml": compose_text(base, tf_version),
    }
    paths = []
    for file_name, text in texts.items():
        write_atomic(base / file_name, text)
        paths.append(base / file_name)
    return paths
