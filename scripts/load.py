"""Load generator for TF Serving's REST and gRPC APIs: N requests from C concurrent clients.

    python -m mnist_keras.serve &                # or tensorflow/serving (8500 gRPC, 8501 REST)
    python scripts/load.py --requests 2000 --clients 1,8,32
    python scripts/load.py --grpc 127.0.0.1:8500 --requests 2000 --clients 1,8,32

gRPC clients use tensorflow-serving-api's PredictionServiceStub, one channel per client.

Each client is a thread with one keep-alive HTTP connection, sending single-image
:predict requests (real MNIST test digits, row format) back to back. Prints, per
concurrency, throughput and latency percentiles. Client and server share this machine's
cores, so the figures are for the pair, as on a laptop.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import socket
import threading
import time
import urllib.parse

import numpy as np
from absl import app, flags

from mnist_keras.data import datasets

FLAGS = flags.FLAGS
flags.DEFINE_string("url", "http://127.0.0.1:8501/v1/models/mnist:predict", "The :predict URL.")
flags.DEFINE_integer("requests", 2000, "Requests per concurrency level.", lower_bound=1)
flags.DEFINE_list("clients", ["1", "8", "32"], "Concurrency levels to measure.")
flags.DEFINE_integer("images", 1, "Images per request.", lower_bound=1)
flags.DEFINE_string("grpc", None, "host:port of the gRPC API: load it instead of REST.")
flags.DEFINE_string("model_name", "mnist", "The model_spec name (gRPC).")
flags.DEFINE_integer("warmup", 50, "Requests sent first and not counted.", lower_bound=0)


def request_bodies(images_per_request: int, count: int = 64) -> list[bytes]:
    x = datasets.load().x_test
    bodies = []
    for i in range(count):
        batch = x[i * images_per_request:(i + 1) * images_per_request, :, :, None] / 255.0
        bodies.append(json.dumps({"instances": np.round(batch, 4).tolist()}).encode())
    return bodies


def grpc_requests(images_per_request: int, model_name: str, count: int = 64) -> list:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    x = datasets.load().x_test
    requests = []
    for i in range(count):
        batch = x[i * images_per_request:(i + 1) * images_per_request, :, :, None].astype(np.float32) / 255.0
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "serving_default"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch))
        requests.append(request)
    return requests


def run_grpc_level(address: str, requests_: list, requests: int, clients: int) -> dict:
    """As run_level, over gRPC: one channel and PredictionServiceStub per client thread."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    def send(state: dict, i: int) -> tuple[bool, str]:
        if "stub" not in state:
            state["channel"] = grpc.insecure_channel(address)
            state["stub"] = prediction_service_pb2_grpc.PredictionServiceStub(state["channel"])
        try:
            response = state["stub"].Predict(requests_[i % len(requests_)], timeout=60)
            return "classes" in response.outputs, ""
        except grpc.RpcError as e:
            return False, f"{e.code()}: {e.details()}"

    return _run(send, requests, clients, lambda state: state.get("channel") and state["channel"].close())


def _run(send, requests: int, clients: int, close) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        state: dict = {}
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            start = time.perf_counter()
            ok, error = send(state, i)
            elapsed = time.perf_counter() - start
            with lock:
                (latencies if ok else errors).append(elapsed if ok else error)
        close(state)

    return _summary(client, clients, requests, latencies, errors)


def _summary(client, clients: int, requests: int, latencies: list, errors: list) -> dict:
    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"clients": clients, "requests": requests, "errors": len(errors),
            "first_error": errors[0] if errors else "", "seconds": wall, "client_cpu_s": time.process_time() - cpu,
            "per_second": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(np.max(ms))}


def run_level(url: str, bodies: list[bytes], requests: int, clients: int) -> dict:
    """Sends `requests` requests from `clients` threads; latencies in seconds, errors counted."""
    target = urllib.parse.urlsplit(url)

    def connect() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
        connection.connect()
        # As curl and urllib3 do: without it the body, sent after the headers, waits for
        # their delayed ACK (Nagle's algorithm), 40 ms and more.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def send(state: dict, i: int) -> tuple[bool, str]:
        connection = state.get("connection") or state.setdefault("connection", connect())
        try:
            connection.request("POST", target.path, bodies[i % len(bodies)], {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status == 200 and b"predictions" in payload:
                return True, ""
            return False, payload[:200].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            connection.close()
            state["connection"] = connect()
            return False, str(e)[:200]

    def close(state: dict) -> None:
        if "connection" in state:
            state["connection"].close()

    return _run(send, requests, clients, close)


def main(argv: list[str]) -> None:
    del argv  # unused
    if FLAGS.grpc:
        bodies = grpc_requests(FLAGS.images, FLAGS.model_name)
        target = f"gRPC {FLAGS.grpc}"

        def level(n: int, clients: int) -> dict:
            return run_grpc_level(FLAGS.grpc, bodies, n, clients)
    else:
        bodies = request_bodies(FLAGS.images)
        target = FLAGS.url

        def level(n: int, clients: int) -> dict:
            return run_level(FLAGS.url, bodies, n, clients)
    if FLAGS.warmup:
        level(FLAGS.warmup, 1)
    print(f"{target}: {FLAGS.images} image(s) per request; {os.cpu_count()} CPU cores, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("clients  requests  errors  requests/s  p50 ms  p99 ms  max ms  load CPU-s")
    failed = False
    for clients in [int(c) for c in FLAGS.clients]:
        r = level(FLAGS.requests, clients)
        print(f"{r['clients']:>7}  {r['requests']:>8}  {r['errors']:>6}  {r['per_second']:>10.0f}  "
              f"{r['p50_ms']:>6.2f}  {r['p99_ms']:>6.2f}  {r['max_ms']:>6.1f}  {r['client_cpu_s']:>10.1f}", flush=True)
        if r["errors"]:
            print(f"  first error: {r['first_error']}")
            failed = True
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    app.run(main)
