"""TF Serving's REST API and the drawing pages, as a FastAPI app over a ModelManager.

The command (its flags, and the routes) is mnist_keras/serve.py; model_server.py runs this
app beside the gRPC server. Errors come back as TF Serving gives them: HTTP 400 or 404
with {"error": "..."}.
"""


import contextlib
import socket
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from mnist_keras.data.datasets import scale_images
from mnist_keras.errors import InputError, NoInk
from mnist_keras.serving.batching import QueueFull
from mnist_keras.serving.model_manager import NotFound
from mnist_keras.serving.predict_format import MAX_INSTANCES, RequestError, format_predict, parse_predict

MAX_BODY_BYTES = 16 * 1024 * 1024


# --- The web application ------------------------------------------------------------------

def create_app(manager: Any, max_body_bytes: int = MAX_BODY_BYTES, max_instances: int = MAX_INSTANCES,
               metrics: Any = None, metrics_path: str | None = None, web_dir: Path | None = None) -> Any:
    """The FastAPI application: TF Serving's REST routes, the drawing pages and /draw.

    manager: a model_manager.ModelManager (its versions, switched live).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    app = FastAPI(title="mnist-keras", docs_url=None, redoc_url=None, openapi_url=None)
    page = resources.files("mnist_keras.serving").joinpath("draw.html").read_text()

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound):
        return JSONResponse({"error": str(error)}, status_code=404)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull):
        return JSONResponse({"error": str(error)}, status_code=503)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, error: ClientDisconnect):  # closed mid-body: no one to answer
        return Response(status_code=499)

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
        return await run_in_threadpool(work)

    if metrics is not None and metrics_path:
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
