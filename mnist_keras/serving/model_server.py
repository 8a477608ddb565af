"""Runs TF Serving's two APIs over one model's versions: gRPC, REST, batching, metrics.

serve.main reads tensorflow_model_server's flags and calls run_model_server with values.
"""

from __future__ import annotations

import gc
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


@dataclass
class ServerOptions:
    name: str
    base: Path
    specific: list[int] | None = None
    latest: int = 1
    host: str = "127.0.0.1"
    grpc_port: int = 8500
    poll_seconds: float = 1.0
    warmup: bool = True
    batching: object = None  # batching.BatchingParameters, or None: no batching
    metrics_path: str | None = None
    max_instances: int = 1024
    max_body_bytes: int = 16 * 1024 * 1024
    grpc_threads: int = 16
    grpc_max_concurrent_rpcs: int | None = 64  # past it, RESOURCE_EXHAUSTED
    grpc_channel_arguments: str = ""  # TF Serving's "key=value,..." (grpc.max_concurrent_streams=...)
    rest_timeout_s: float = 30.0  # to receive a whole request (TF Serving's --rest_api_timeout_in_ms)
    rest_max_connections: int = 1000  # past it, the longest-waiting connection is closed, or a 503
    access_log: bool = False
    web_dir: Path | None = None  # export/web/, served at /web/
    trust_model: bool = False  # run versions whose graph has file, network or process ops


def run_model_server(options: ServerOptions, sock: socket.socket | None = None) -> None:
    """Loads the versions, serves gRPC, and REST on `sock` (None: gRPC only) until stopped."""
    import uvicorn

    from mnist_keras.serving import batching, grpc_service, model_manager, prometheus
    from mnist_keras.serving.connections import guarded_protocol, raise_open_file_limit
    from mnist_keras.serving.rest import create_app

    metrics = prometheus.Metrics()

    def make_batcher(loaded: model_manager.LoadedVersion) -> batching.Batcher | None:
        if not options.batching:
            return None
        sizes = metrics.batch_size.labels(loaded.name, str(loaded.version))

        def run(images: np.ndarray) -> dict[str, np.ndarray]:
            sizes.observe(len(images))
            return loaded.call(images)
        return batching.Batcher(run, options.batching)

    manager = model_manager.ModelManager(
        options.name, options.base, options.specific, options.latest, options.poll_seconds, options.warmup,
        make_batcher, log=lambda line: print(line, flush=True), trust_model=options.trust_model)
    manager.start()
    server, grpc_port = grpc_service.start_grpc_server(
        manager, options.host, options.grpc_port, metrics, options.max_instances, options.grpc_threads,
        options.grpc_max_concurrent_rpcs, options.grpc_channel_arguments)
    serving = manager.resolve(options.name)
    where = f"gRPC at {options.host}:{grpc_port}"
    if sock is not None:
        host, port = sock.getsockname()[:2]
        where += (f"; at http://{host}:{port}/ (draw a digit there); "
                  f"REST: POST http://{host}:{port}/v1/models/{options.name}:predict")
    print(f"Serving {options.name} version {serving.version} ({serving.path}); {where}", flush=True)
    if sock is not None and options.web_dir is not None:
        print(f"In-browser page ({options.web_dir}): http://{host}:{port}/web/", flush=True)
    # Loading TensorFlow leaves hundreds of thousands of Python objects; each full garbage
    # collection walked them all, stalling every request in flight. Frozen, they are out of
    # the collector's reach (the tail latencies are in docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    try:
        if sock is None:
            server.wait_for_termination()
        else:
            app = create_app(manager, options.max_body_bytes, options.max_instances, metrics, options.metrics_path,
                             options.web_dir)
            connections = raise_open_file_limit(options.rest_max_connections)
            if connections < options.rest_max_connections:
                print(f"REST: at most {connections} connections (the open-file limit is too low for "
                      f"{options.rest_max_connections})", flush=True)
            config = uvicorn.Config(app, log_level="warning", access_log=options.access_log,
                                    http=guarded_protocol(options.rest_timeout_s, connections))
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        server.stop(grace=2)
        manager.stop()
