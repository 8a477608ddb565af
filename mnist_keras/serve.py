"""A server that speaks TF Serving's REST and gRPC APIs, plus a page to draw digits on.

    python -m mnist_keras.serve [--model_base_path saved_models/mnist] [--port 8500] [--rest_api_port 8501]

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
"""


import contextlib
import socket
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from absl import flags

from mnist_keras import cli
from mnist_keras.batching import QueueFull
from mnist_keras.data import scale_images
from mnist_keras.errors import InputError, NoInk
from mnist_keras.model_manager import NotFound
from mnist_keras.serving_requests import MAX_INSTANCES, RequestError, format_predict, parse_predict

MAX_BODY_BYTES = 16 * 1024 * 1024


# --- The web application ------------------------------------------------------------------

def create_app(manager: Any, max_body_bytes: int = MAX_BODY_BYTES, max_instances: int = MAX_INSTANCES,
               metrics: Any = None, metrics_path: str | None = None, web_dir: Path | None = None) -> Any:
    """The FastAPI application: TF Serving's REST routes, the drawing pages and /draw.

    manager: a model_manager.ModelManager (its versions, switched live).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    app = FastAPI(title="mnist-keras", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("mnist_keras").joinpath("static/draw.html").read_text()

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound):
        return JSONResponse({"error": str(error)}, status_code=404)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull):
        return JSONResponse({"error": str(error)}, status_code=503)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):  # unknown routes, methods
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):  # a bug: still JSON, still serving
        return JSONResponse({"error": f"Internal error: {type(error).__name__}: {error}"},
                            status_code=500)

    # Preprocessing a large upload takes much memory for a moment: two at a time, not forty.
    preprocessing = threading.BoundedSemaphore(2)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise RequestError(f"request body of {int(declared)} bytes is over the "
                               f"{max_body_bytes}-byte limit")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise RequestError(f"request body is over the {max_body_bytes}-byte limit")
        return bytes(body)

    def status(name: str, version: str | None) -> dict:
        return {"model_version_status": [{
            "version": str(s.version), "state": s.state,
            "status": {"error_code": s.error_code, "error_message": s.error_message}}
            for s in manager.statuses(name, version)]}

    @app.get("/v1/models/{name}")
    async def model_status(name: str):
        return status(name, None)

    @app.get("/v1/models/{name}/versions/{version}")
    async def version_status(name: str, version: str):
        return status(name, version)

    def metadata(name: str, version: str | None) -> dict:
        loaded = manager.resolve(name, version)
        return {"model_spec": {"name": loaded.name, "signature_name": "",
                               "version": str(loaded.version)},
                "metadata": {"signature_def": loaded.metadata}}

    @app.get("/v1/models/{name}/metadata")
    async def model_metadata(name: str):
        return metadata(name, None)

    @app.get("/v1/models/{name}/versions/{version}/metadata")
    async def version_metadata(name: str, version: str):
        return metadata(name, version)

    async def predict(request: Request, name: str, version: str | None):
        loaded = manager.resolve(name, version)
        body = await read_body(request)

        def work() -> dict:
            with metrics.observe(loaded.name, loaded.version, "rest") if metrics else contextlib.nullcontext():
                images, row = parse_predict(body, max_instances)
                return format_predict(loaded.run(images), row)
        return await run_in_threadpool(work)

    @app.post("/v1/models/{name}:predict")
    async def model_predict(request: Request, name: str):
        return await predict(request, name, None)

    @app.post("/v1/models/{name}/versions/{version}:predict")
    async def version_predict(request: Request, name: str, version: str):
        return await predict(request, name, version)

    @app.get("/", response_class=HTMLResponse)
    async def draw_page():
        return page

    @app.post("/draw")
    async def draw(request: Request):
        """An image file (PNG from the canvas, or an upload) -> the digit, as predict reads it."""
        body = await read_body(request)

        def work() -> dict:
            from mnist_keras.preprocess import preprocess

            try:
                with preprocessing:
                    image = preprocess(body, "image")
            except NoInk:  # blank, one colour, no contrast: no digit, not an error
                from mnist_keras.no_digit import NO_INK

                return {"digit": None, "no_digit": True, "digit_score": None, "reason": NO_INK}
            except InputError as e:
                raise RequestError(str(e)) from None
            outputs = manager.resolve(manager.name).run(scale_images(image[None]))
            answer = {"digit": int(outputs["classes"][0]),
                      "probabilities": outputs["probabilities"][0].tolist(),
                      "image": image.tolist()}
            if "digit_score" in outputs:  # a SavedModel exported with the no-digit head (no_digit.py)
                score = float(outputs["digit_score"][0])
                answer.update(digit_score=score, no_digit=score < 0.5)
                if answer["no_digit"]:
                    answer["digit"] = None
            return answer
        return await run_in_threadpool(work)

    if metrics is not None and metrics_path:
        from fastapi.responses import Response

        @app.get(metrics_path)
        async def prometheus_metrics():
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

    if web_dir is not None:  # the static page of export/web/ (mnist_keras/web_export.py)
        mount_web(app, web_dir)
    return app


def mount_web(app: Any, web_dir: Path) -> None:
    """Serves export/web/ at /web/; until export has written it, /web/ says how to get it."""
    from fastapi.responses import JSONResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    app.add_api_route("/web", lambda: RedirectResponse("/web/"), include_in_schema=False)
    if (web_dir / "index.html").is_file():
        app.mount("/web/", StaticFiles(directory=web_dir, html=True), name="web")
        return
    message = f"{web_dir}/index.html: not found; run python -m mnist_keras.export (after npm ci --prefix web)"
    app.add_api_route("/web/{path:path}", lambda path: JSONResponse({"error": message}, status_code=404),
                      include_in_schema=False)


def bind(host: str, port: int) -> socket.socket:
    """Binds before the model loads, so a busy port is one line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without
    # it every keep-alive response waits 40 ms for a delayed ACK (Nagle's algorithm).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(f"{host}:{port}: cannot listen: {e.strerror}") from None
    sock.listen(2048)  # clients queue from now on, while the model loads
    sock.set_inheritable(True)
    return sock


FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv  # unused
    from mnist_keras import batching, model_manager, model_server, serving_metrics

    refused = [name for name in model_server.UNSUPPORTED_FLAGS if FLAGS[name].present]
    if refused:
        raise InputError(f"--{refused[0]}: a tensorflow_model_server flag this server does not support "
                         "(see docs/serving.md)")
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
        FLAGS.max_instances, FLAGS.max_body_mb * 1024 * 1024, FLAGS.grpc_max_threads, FLAGS.access_log,
        Path(FLAGS.web_dir))
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
    from mnist_keras.model_server import UNSUPPORTED_BOOL_FLAGS, UNSUPPORTED_FLAGS

    for name in UNSUPPORTED_FLAGS:
        define = flags.DEFINE_bool if name in UNSUPPORTED_BOOL_FLAGS else flags.DEFINE_string
        define(name, None, "tensorflow_model_server flag; not supported here (an error).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    flags.DEFINE_integer("max_instances", MAX_INSTANCES, "Most images in one request.",
                         lower_bound=1)
    flags.DEFINE_integer("max_body_mb", MAX_BODY_BYTES // (1024 * 1024),
                         "Largest request body, in MiB.", lower_bound=1)
    flags.DEFINE_bool("access_log", False, "Log every request.")
    flags.DEFINE_string("web_dir", "export/web", "The static page export writes; served at /web/.")


def cli_main() -> None:
    """The `mnist-serve` console script and `python -m mnist_keras.serve`."""
    define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
