"""TF Serving's REST API and the drawing pages, as a FastAPI app over a ModelManager.

The command (its flags, and the routes) is mnist_keras/serve.py; model_server.py runs this
app beside the gRPC server. Errors come back as TF Serving gives them: HTTP 400 or 404
with {"error": "..."}.
"""


import contextlib
import socket
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from mnist_keras.data.datasets import scale_images
from mnist_keras.errors import InputError, NoInk
from mnist_keras.exporting.web_page import page_text
from mnist_keras.serving.batching import QueueFull
from mnist_keras.serving.config import ServerOptions
from mnist_keras.serving.model_manager import NotFound
from mnist_keras.serving.predict_format import RequestError, format_predict, parse_predict

# What both drawing pages load, from exporting/web/ (mnist-export copies them into export/web/ too).
SHARED_PAGE_FILES = {"draw.css": "text/css", "draw.js": "text/javascript"}


# --- The web application ------------------------------------------------------------------

def create_app(manager: Any, options: ServerOptions | None = None, metrics: Any = None,
               metrics_path: str | None = None) -> Any:
    """The FastAPI application: TF Serving's REST routes, the drawing pages and /draw.

    manager: a model_manager.ModelManager (its versions, switched live); options: the body and
    instance limits, web_dir (None: the defaults); metrics_path: where Prometheus reads `metrics`.
    """
    options = options or ServerOptions(web_dir="")
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI(title="mnist-keras", docs_url=None, redoc_url=None, openapi_url=None)
    add_error_handlers(app)
    add_model_routes(app, manager, options, metrics)
    add_draw_routes(app, manager, options)
    if metrics is not None and metrics_path:
        async def prometheus_metrics():
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)
        app.add_api_route(metrics_path, prometheus_metrics, methods=["GET"])
    if options.web_dir:  # the static page of export/web/ (mnist_keras/web_export.py)
        mount_web(app, Path(options.web_dir))
    return app


def add_error_handlers(app: Any) -> None:
    """Errors as TF Serving gives them, {"error": "..."}; a bug is still JSON, and the server keeps serving."""
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    def answer(status: Callable[[Any], int], message: Callable[[Any], str] = str) -> Callable:
        async def handler(request: Any, error: Exception) -> Any:
            return JSONResponse({"error": message(error)}, status_code=status(error))
        return handler

    app.add_exception_handler(RequestError, answer(lambda error: error.status))
    app.add_exception_handler(NotFound, answer(lambda error: 404))
    app.add_exception_handler(QueueFull, answer(lambda error: 503))

    async def client_gone(request: Any, error: ClientDisconnect) -> Any:  # closed mid-body: no one to answer
        return Response(status_code=499)
    app.add_exception_handler(ClientDisconnect, client_gone)
    # unknown routes, methods
    app.add_exception_handler(HTTPException, answer(lambda error: error.status_code, lambda error: str(error.detail)))
    app.add_exception_handler(Exception, answer(  # a bug
        lambda error: 500, lambda error: f"Internal error: {type(error).__name__}: {error}"))


async def read_body(request: Any, max_body_bytes: int) -> bytes:
    """The body, counted as it streams in: past max_body_bytes, 413 before another byte is kept."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(f"request body of {int(declared)} bytes is over the "
                           f"{max_body_bytes}-byte limit", 413)
    chunks, size = [], 0  # joined once at the end: a growing bytearray peaks at twice its size
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise RequestError(f"request body is over the {max_body_bytes}-byte limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def add_model_routes(app: Any, manager: Any, options: ServerOptions, metrics: Any) -> None:
    """/v1/models/<name>[/versions/<N>], its /metadata and :predict, as TF Serving's REST API."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    async def status(request: Request):
        return {"model_version_status": [{
            "version": str(s.version), "state": s.state,
            "status": {"error_code": s.error_code, "error_message": s.error_message}}
            for s in manager.statuses(*named(request))]}

    async def metadata(request: Request):
        loaded = manager.resolve(*named(request))
        return {"model_spec": {"name": loaded.name, "signature_name": "", "version": str(loaded.version)},
                "metadata": {"signature_def": loaded.metadata}}

    async def predict(request: Request):
        loaded = manager.resolve(*named(request))
        body = await read_body(request, options.max_body_bytes)

        def work() -> dict:
            with metrics.observe(loaded.name, loaded.version, "rest") if metrics else contextlib.nullcontext():
                images, row = parse_predict(body, options.max_instances)
                return format_predict(loaded.run(images), row)
        return await run_in_threadpool(work)

    routes = (("", status, "GET"), ("/metadata", metadata, "GET"), (":predict", predict, "POST"))
    for suffix, endpoint, method in routes:  # the order TF Serving's paths were matched in before
        for version in ("", "/versions/{version}"):
            app.add_api_route(f"/v1/models/{{name}}{version}{suffix}", endpoint, methods=[method])


def named(request: Any) -> tuple[str, str | None]:
    """The model and version a /v1/models/ path names (None: the newest)."""
    return request.path_params["name"], request.path_params.get("version")


def add_draw_routes(app: Any, manager: Any, options: ServerOptions) -> None:
    """The drawing page at /, its shared script and stylesheet, and /draw, which it posts the canvas to."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse
    from starlette.concurrency import run_in_threadpool

    page = page_text(resources.files("mnist_keras.serving").joinpath("draw.html").read_text())  # with its includes
    # Preprocessing a large upload takes much memory for a moment: two at a time, not forty.
    preprocessing = threading.BoundedSemaphore(2)

    async def draw_page():
        return page

    for name, media_type in SHARED_PAGE_FILES.items():  # the pen, the bars and the stylesheet of both pages
        text = resources.files("mnist_keras.exporting").joinpath(f"web/{name}").read_text()
        app.add_api_route(f"/{name}", static_file(text, media_type), methods=["GET"])

    async def draw(request: Request):
        """An image file (PNG from the canvas, or an upload) -> the digit, as predict reads it."""
        body = await read_body(request, options.max_body_bytes)
        return await run_in_threadpool(read_drawing, manager, body, preprocessing)

    app.add_api_route("/", draw_page, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/draw", draw, methods=["POST"])


def static_file(text: str, media_type: str) -> Callable:
    """A route answering one file's text."""
    from fastapi.responses import Response

    async def get():
        return Response(text, media_type=media_type)
    return get


def read_drawing(manager: Any, body: bytes, preprocessing: threading.BoundedSemaphore) -> dict:
    """/draw's answer: the digit, its probabilities and the 28x28 picture the network saw; no digit
    for a blank image or, with the no-digit head, one it does not take for a digit."""
    from mnist_keras.data.preprocess import preprocess
    from mnist_keras.inference import no_digit

    try:
        with preprocessing:
            image = preprocess(body, "image")
    except NoInk:  # blank, one colour, no contrast: no digit, not an error
        return {"digit": None, "no_digit": True, "digit_score": None, "reason": no_digit.NO_INK}
    except InputError as e:
        raise RequestError(str(e)) from None
    outputs = manager.resolve(manager.name).run(scale_images(image[None]))
    answer = {"digit": int(outputs["classes"][0]),
              "probabilities": outputs["probabilities"][0].tolist(),
              "image": image.tolist()}
    if "digit_score" in outputs:  # a SavedModel exported with the no-digit head (no_digit.py)
        score = float(outputs["digit_score"][0])
        answer.update(digit_score=score, no_digit=bool(no_digit.decide(score)))
        if answer["no_digit"]:
            answer["digit"] = None
    return answer


def mount_web(app: Any, web_dir: Path) -> None:
    """Serves export/web/ at /web/; until export has written it, /web/ says how to get it."""
    from fastapi.responses import JSONResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    app.add_api_route("/web", lambda: RedirectResponse("/web/"), include_in_schema=False)
    if (web_dir / "index.html").is_file():
        app.mount("/web/", StaticFiles(directory=web_dir, html=True), name="web")
        return
    message = f"{web_dir}/index.html: not found; run mnist-export (after npm ci --prefix web)"
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
