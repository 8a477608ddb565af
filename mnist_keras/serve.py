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

from pathlib import Path

from absl import flags

from mnist_keras import cli
from mnist_keras.errors import InputError
from mnist_keras.serving.predict_format import MAX_INSTANCES
from mnist_keras.serving.rest import MAX_BODY_BYTES, bind

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras.serving import batching, grpc_service, model_manager, model_server
    from mnist_keras.serving import prometheus as serving_metrics

    refused = [name for name in model_server.UNSUPPORTED_FLAGS if FLAGS[name].present]
    if refused:
        raise InputError(f"--{refused[0]}: a tensorflow_model_server flag this server does not support "
                         "(see docs/serving.md)")
    grpc_service.channel_options(FLAGS.max_instances, FLAGS.grpc_channel_arguments)  # a bad one: one line, now
    if FLAGS.model_config_file:
        if FLAGS["model_base_path"].present:
            raise InputError("--model_config_file and --model_base_path: give one, not both")
        name, base, specific, latest = model_manager.read_model_config(Path(FLAGS.model_config_file))
    else:
        name, base, specific, latest = FLAGS.model_name, Path(FLAGS.model_base_path), None, 1
        model_manager.latest_version(base)  # fail fast, before TensorFlow loads
    options = model_server.ServerOptions(
        name, base, specific, latest, FLAGS.host, FLAGS.port, FLAGS.file_system_poll_wait_seconds,
        FLAGS.enable_model_warmup,
        batching.read_batching_parameters(Path(FLAGS.batching_parameters_file) if FLAGS.batching_parameters_file
                                          else None) if FLAGS.enable_batching else None,
        serving_metrics.read_monitoring_path(Path(FLAGS.monitoring_config_file) if FLAGS.monitoring_config_file
                                             else None),
        FLAGS.max_instances, FLAGS.max_body_mb * 1024 * 1024, FLAGS.grpc_max_threads,
        FLAGS.grpc_max_concurrent_rpcs, FLAGS.grpc_channel_arguments, FLAGS.rest_api_timeout_in_ms / 1000,
        FLAGS.rest_api_max_connections, FLAGS.access_log, Path(FLAGS.web_dir), trust_model=FLAGS.trust_model)
    sock = bind(FLAGS.host, FLAGS.rest_api_port) if FLAGS.rest_api_port else None  # 0: no REST, as TF Serving
    model_server.run_model_server(options, sock)


def define_flags() -> None:
    """tensorflow_model_server's flags (same names, defaults and meaning), then this server's own."""
    flags.DEFINE_integer("port", 8500, "gRPC port (TF Serving's 8500; 0: any free port).",
                         lower_bound=0, upper_bound=65535)
    flags.DEFINE_integer("rest_api_port", 8501, "REST and drawing-page port (TF Serving's 8501; 0: no REST).",
                         lower_bound=0, upper_bound=65535)
    flags.DEFINE_string("model_base_path", "saved_models/mnist",
                        "Folder of SavedModel versions (1, 2, ...); the newest is served.")
    flags.DEFINE_string("model_name", "mnist", "The name in /v1/models/<name> and gRPC's model_spec.")
    flags.DEFINE_string("model_config_file", "", "A models.config (ModelServerConfig text): name, base "
                        "path, version policy; instead of --model_name/--model_base_path.")
    flags.DEFINE_float("file_system_poll_wait_seconds", 1, "Seconds between looks for new versions "
                       "(0: look once, at start).", lower_bound=0)
    flags.DEFINE_bool("enable_batching", False, "Group concurrent requests into one signature call.")
    flags.DEFINE_string("batching_parameters_file", "", "BatchingParameters text (batching.config).")
    flags.DEFINE_string("monitoring_config_file", "", "MonitoringConfig text (monitoring.config): "
                        "the Prometheus metrics path.")
    flags.DEFINE_bool("enable_model_warmup", True, "Replay assets.extra/tf_serving_warmup_requests on load.")
    flags.DEFINE_integer("grpc_max_threads", 16, "Threads answering gRPC requests.", lower_bound=1)
    flags.DEFINE_string("grpc_channel_arguments", "", "gRPC server options, key=value,... (e.g. "
                        "grpc.max_concurrent_streams=10,grpc.max_receive_message_length=4194304); "
                        "defaults: 100 streams a connection, a message of at most --max_instances images.")
    flags.DEFINE_integer("rest_api_timeout_in_ms", 30000, "Deadline to receive a whole REST request, headers "
                         "and body (then 408 and the connection closed).", lower_bound=1)
    from mnist_keras.serving.model_server import UNSUPPORTED_BOOL_FLAGS, UNSUPPORTED_FLAGS

    for name in UNSUPPORTED_FLAGS:
        define = flags.DEFINE_bool if name in UNSUPPORTED_BOOL_FLAGS else flags.DEFINE_string
        define(name, None, "tensorflow_model_server flag; not supported here (an error).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    flags.DEFINE_integer("max_instances", MAX_INSTANCES, "Most images in one request.",
                         lower_bound=1)
    flags.DEFINE_integer("max_body_mb", MAX_BODY_BYTES // (1024 * 1024),
                         "Largest request body, in MiB.", lower_bound=1)
    flags.DEFINE_integer("rest_api_max_connections", 1000, "Most open REST connections; past it the one "
                         "waiting longest for its request is closed, or the new one gets 503.", lower_bound=1)
    flags.DEFINE_integer("grpc_max_concurrent_rpcs", 64, "Most gRPC calls in progress or queued; "
                         "past it, RESOURCE_EXHAUSTED.", lower_bound=1)
    flags.DEFINE_bool("access_log", False, "Log every request.")
    flags.DEFINE_string("web_dir", "export/web", "The static page export writes; served at /web/.")
    cli.define_trust_flag()
    flags.adopt_module_key_flags(cli)


def cli_main() -> None:
    """The `mnist-serve` console script and `python -m mnist_keras.serve`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
