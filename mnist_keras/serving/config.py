"""mnist-serve's settings: one field a flag (tensorflow_model_server's names and defaults, then this
server's own), and the files they name, read and checked before TensorFlow loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_keras.serving.predict_format import MAX_INSTANCES

# tensorflow_model_server flags this server refuses in one line rather than ignoring.
UNSUPPORTED_FLAGS = (
    "grpc_socket_path", "rest_api_num_threads",
    "rest_api_enable_cors_support", "ssl_config_file", "platform_config_file", "model_config_file_poll_wait_seconds",
    "num_load_threads", "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
    "flush_filesystem_caches", "tensorflow_session_parallelism", "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism", "per_process_gpu_memory_fraction", "saved_model_tags",
    "num_request_iterations_for_warmup", "enable_signature_method_name_check", "xla_cpu_compilation_enabled",
    "enable_profiler", "allow_version_labels_for_unavailable_models", "response_tensor_encoding",
    "use_tflite_model", "prefer_tflite_model", "remove_unused_fields_from_bundle_metagraph",
    "batching_parameters_file_poll_wait_seconds", "model_name_for_warmup",
)
# The boolean ones: TF Serving users write them bare (--use_tflite_model), so they are defined
# as booleans and get the refusal, not absl's "Missing value".
UNSUPPORTED_BOOL_FLAGS = frozenset({
    "rest_api_enable_cors_support", "flush_filesystem_caches", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "enable_profiler", "allow_version_labels_for_unavailable_models",
    "use_tflite_model", "prefer_tflite_model", "remove_unused_fields_from_bundle_metagraph",
})


@dataclass(frozen=True)
class ServerOptions:
    """The server's settings; serve.py defines a flag of the same name from each field (these defaults)."""

    port: int = 8500  # gRPC (0: any free port)
    rest_api_port: int = 8501  # REST and the drawing page (0: no REST)
    model_base_path: str = "saved_models/mnist"
    model_name: str = "mnist"
    model_config_file: str = ""  # instead of model_name and model_base_path
    file_system_poll_wait_seconds: float = 1
    enable_batching: bool = False
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""  # the Prometheus metrics path
    enable_model_warmup: bool = True
    grpc_max_threads: int = 16
    grpc_channel_arguments: str = ""  # TF Serving's "key=value,..." (grpc.max_concurrent_streams=...)
    rest_api_timeout_in_ms: int = 30000  # to receive a whole request
    host: str = "127.0.0.1"
    max_instances: int = MAX_INSTANCES
    max_body_mb: int = 16
    rest_api_max_connections: int = 1000  # past it, the longest-waiting connection is closed, or a 503
    grpc_max_concurrent_rpcs: int = 64  # past it, RESOURCE_EXHAUSTED
    access_log: bool = False
    web_dir: str = "export/web"  # served at /web/
    trust_model: bool = False  # run versions whose graph has file, network or process ops

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_mb * 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """What the options' files say: the model and its version policy, batching, the metrics path."""

    name: str
    base: Path
    specific: list[int] | None  # the versions to serve, else the latest N
    latest: int
    batching: object  # batching.BatchingParameters, or None: no batching
    metrics_path: str | None  # None: no Prometheus metrics
