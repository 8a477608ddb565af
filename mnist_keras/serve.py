"""A server that speaks TF Serving's REST and gRPC APIs, plus a page to draw digits on.

    mnist-serve [--model_base_path saved_models/mnist] [--port 8500] [--rest_api_port 8501]

It takes tensorflow_model_server's flags and serves --model_base_path (what python -m
mnist_keras.export writes) as TF Serving does: gRPC on --port, REST on --rest_api_port,
new versions picked up while serving (model_manager), so a client or command line written
for one works with the other:

    GET  /v1/models/mnist                        version status
    GET  /v1/models/mnist/metadata               the serving_default signature
    POST /v1/models/mnist[/versions/N]:predict   {"instances": [...]} or {"inputs": ...}
    GET  /                                       draw a digit, watch the prediction
    GET  /web/                                   the same page run in the browser (export/web/)
    POST /draw                                   image bytes -> digit (the page uses it)

Errors come back as TF Serving gives them: HTTP 400 or 404 with {"error": "..."}.
A version whose graph has ops that reach files, the network or other processes is refused before
it loads (inference/saved_model_scan.py; docs/export.md), unless --trust_model.
"""

from __future__ import annotations

import functools

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError
from mnist_keras.serving.config import UNSUPPORTED_BOOL_FLAGS, UNSUPPORTED_FLAGS, ServerOptions

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras.serving import model_server

    refused = [name for name in UNSUPPORTED_FLAGS if FLAGS[name].present]
    if refused:
        raise InputError(f"--{refused[0]}: a tensorflow_model_server flag this server does not support "
                         "(see docs/serving.md)")
    if FLAGS.model_config_file and FLAGS["model_base_path"].present:
        raise InputError("--model_config_file and --model_base_path: give one, not both")
    model_server.run_model_server(cli.config_from_flags(ServerOptions))


def define_flags() -> None:
    """tensorflow_model_server's flags (same names, defaults and meaning), then this server's own;
    the defaults are ServerOptions'."""
    define = functools.partial(cli.define_flag, ServerOptions())
    define("port", "gRPC port (TF Serving's 8500; 0: any free port).", lower_bound=0, upper_bound=65535)
    define("rest_api_port", "REST and drawing-page port (TF Serving's 8501; 0: no REST).",
           lower_bound=0, upper_bound=65535)
    define("model_base_path", "Folder of SavedModel versions (1, 2, ...); the newest is served.")
    define("model_name", "The name in /v1/models/<name> and gRPC's model_spec.")
    define("model_config_file", "A models.config (ModelServerConfig text): name, base "
           "path, version policy; instead of --model_name/--model_base_path.")
    define("file_system_poll_wait_seconds", "Seconds between looks for new versions "
           "(0: look once, at start).", lower_bound=0)
    define("enable_batching", "Group concurrent requests into one signature call.")
    define("batching_parameters_file", "BatchingParameters text (batching.config).")
    define("monitoring_config_file", "MonitoringConfig text (monitoring.config): the Prometheus metrics path.")
    define("enable_model_warmup", "Replay assets.extra/tf_serving_warmup_requests on load.")
    define("grpc_max_threads", "Threads answering gRPC requests.", lower_bound=1)
    define("grpc_channel_arguments", "gRPC server options, key=value,... (e.g. "
           "grpc.max_concurrent_streams=10,grpc.max_receive_message_length=4194304); "
           "defaults: 100 streams a connection, a message of at most --max_instances images.")
    define("rest_api_timeout_in_ms", "Deadline to receive a whole REST request, headers "
           "and body (then 408 and the connection closed).", lower_bound=1)
    for name in UNSUPPORTED_FLAGS:
        define_unsupported = flags.DEFINE_bool if name in UNSUPPORTED_BOOL_FLAGS else flags.DEFINE_string
        define_unsupported(name, None, "tensorflow_model_server flag; not supported here (an error).")
    define("host", "Address to listen on (0.0.0.0: every interface).")
    define("max_instances", "Most images in one request.", lower_bound=1)
    define("max_body_mb", "Largest request body, in MiB.", lower_bound=1)
    define("rest_api_max_connections", "Most open REST connections; past it the one "
           "waiting longest for its request is closed, or the new one gets 503.", lower_bound=1)
    define("grpc_max_concurrent_rpcs", "Most gRPC calls in progress or queued; past it, RESOURCE_EXHAUSTED.",
           lower_bound=1)
    define("access_log", "Log every request.")
    define("web_dir", "The static page export writes; served at /web/.")
    cli.define_trust_flag()
    flags.adopt_module_key_flags(cli)


def cli_main() -> None:
    """The `mnist-serve` console script and `python -m mnist_keras.serve`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
