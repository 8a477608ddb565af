"""Runs TF Serving's two APIs over one model's versions: gRPC, REST, batching, metrics.

serve.main fills a ServerOptions (serving/config.py) from tensorflow_model_server's flags and hands it
whole to run_model_server.
"""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_keras.serving.config import Plan, ServerOptions

__all__ = ["Plan", "ServerOptions", "read_plan", "run_model_server"]


def run_model_server(options: ServerOptions, sock: socket.socket | None = None) -> None:
    """Loads the versions, serves gRPC, and REST until stopped: on `sock` when given (a socket
    the caller bound), else on options.rest_api_port (0: gRPC only, as TF Serving)."""
    from mnist_keras.serving import grpc_service, prometheus
    from mnist_keras.serving.rest import bind

    plan = read_plan(options)  # before the port is taken and TensorFlow loads
    if sock is None and options.rest_api_port:
        sock = bind(options.host, options.rest_api_port)
    metrics = prometheus.Metrics()
    manager = start_manager(options, plan, metrics)
    try:
        server, grpc_port = grpc_service.start_grpc_server(manager, options, metrics)
    except BaseException:
        manager.stop()
        raise
    announce(options, manager, grpc_port, sock)
    # Loading TensorFlow leaves hundreds of thousands of Python objects; each full garbage
    # collection walked them all, stalling every request in flight. Frozen, they are out of
    # the collector's reach (the tail latencies are in docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    try:
        if sock is None:
            server.wait_for_termination()
        else:
            serve_rest(options, plan, manager, metrics, sock)
    finally:
        server.stop(grace=2)
        manager.stop()


def start_manager(options: ServerOptions, plan: Plan, metrics: Any) -> Any:
    """The ModelManager over the plan's versions, loading the first before it returns."""
    from mnist_keras.serving import model_manager

    policy = model_manager.Policy(plan.specific, plan.latest, options.file_system_poll_wait_seconds,
                                  options.enable_model_warmup, options.trust_model)
    manager = model_manager.ModelManager(plan.name, plan.base, policy, batcher_factory(plan, metrics),
                                         log=lambda line: print(line, flush=True))
    manager.start()
    return manager


def batcher_factory(plan: Plan, metrics: Any) -> Callable[[Any], Any] | None:
    """What gives each loaded version its Batcher (recording batch sizes), or None: no batching."""
    if not plan.batching:
        return None
    from mnist_keras.serving import batching

    def make_batcher(loaded: Any) -> batching.Batcher:
        sizes = metrics.batch_size.labels(loaded.name, str(loaded.version))

        def run(images: np.ndarray) -> dict[str, np.ndarray]:
            sizes.observe(len(images))
            return loaded.call(images)
        return batching.Batcher(run, plan.batching)
    return make_batcher


def announce(options: ServerOptions, manager: Any, grpc_port: int, sock: socket.socket | None) -> None:
    """The start-up lines: which version, where gRPC, REST and the pages are."""
    serving = manager.resolve(manager.name)
    where = f"gRPC at {options.host}:{grpc_port}"
    if sock is not None:
        host, port = sock.getsockname()[:2]
        where += (f"; at http://{host}:{port}/ (draw a digit there); "
                  f"REST: POST http://{host}:{port}/v1/models/{manager.name}:predict")
    print(f"Serving {manager.name} version {serving.version} ({serving.path}); {where}", flush=True)
    if sock is not None and options.web_dir:
        print(f"In-browser page ({options.web_dir}): http://{host}:{port}/web/", flush=True)


def serve_rest(options: ServerOptions, plan: Plan, manager: Any, metrics: Any, sock: socket.socket) -> None:
    """uvicorn on `sock`, with the connection guards, until stopped."""
    import uvicorn

    from mnist_keras.serving.connections import guarded_protocol, raise_open_file_limit
    from mnist_keras.serving.rest import create_app

    app = create_app(manager, options, metrics, plan.metrics_path)
    connections = raise_open_file_limit(options.rest_api_max_connections)
    if connections < options.rest_api_max_connections:
        print(f"REST: at most {connections} connections (the open-file limit is too low for "
              f"{options.rest_api_max_connections})", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=options.access_log,
                            http=guarded_protocol(options.rest_api_timeout_in_ms / 1000, connections))
    uvicorn.Server(config).run(sockets=[sock])


def read_plan(options: ServerOptions) -> Plan:
    """Every file the options name, read and checked now: a bad one is one line, before TensorFlow loads."""
    from mnist_keras.serving import batching, grpc_service, model_manager, prometheus

    grpc_service.channel_options(options.max_instances, options.grpc_channel_arguments)
    if options.model_config_file:
        name, base, specific, latest = model_manager.read_model_config(Path(options.model_config_file))
    else:
        name, base, specific, latest = options.model_name, Path(options.model_base_path), None, 1
        model_manager.latest_version(base)
    parameters = None
    if options.enable_batching:
        parameters = batching.read_batching_parameters(_path(options.batching_parameters_file))
    metrics_path = prometheus.read_monitoring_path(_path(options.monitoring_config_file))
    return Plan(name, base, specific, latest, parameters, metrics_path)


def _path(flag: str) -> Path | None:
    return Path(flag) if flag else None
