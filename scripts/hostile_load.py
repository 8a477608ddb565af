"""Hostile load against a running mnist-serve (or TF Serving): the numbers of issue 26.

    python -m mnist_keras.serve &
    python scripts/hostile_load.py --pid $!        # REST 127.0.0.1:8501, gRPC 127.0.0.1:8500

Three attacks, each while one client times good single-image requests (REST and gRPC in
turn, each on a fresh connection, 5 s timeout):
  grpc:        --hostile threads send gRPC requests declaring a million images in 49 bytes,
               dtype 999, a tensor_content of the wrong length, a shape of 2^40, NaN pixels.
  rest_bodies: --hostile threads POST bodies of --body_mb MB holding far too many values.
  connections: --connections sockets opened and left idle or with half their headers sent.
With --pid, the server's resident memory (VmRSS) before and after, and its peak (VmHWM,
reset first) during each attack. Good requests must be answered within 1 s (or refused
with a clean 503 past the connection cap); none may hang.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("host", "127.0.0.1", "The server.")
flags.DEFINE_integer("rest_port", 8501, "REST port.")
flags.DEFINE_integer("grpc_port", 8500, "gRPC port.")
flags.DEFINE_integer("pid", None, "The server's process id: its memory is read from /proc.")
flags.DEFINE_integer("hostile", 16, "Concurrent hostile clients (grpc, rest_bodies).", lower_bound=1)
flags.DEFINE_float("seconds", 10, "How long each attack lasts.", lower_bound=0.5)
flags.DEFINE_integer("body_mb", 15, "Size of each hostile REST body.", lower_bound=1)
flags.DEFINE_integer("connections", 1100, "Idle and half-sent connections opened.", lower_bound=1)
flags.DEFINE_list("attacks", ["grpc", "rest_bodies", "connections"], "Which attacks, in order.")


def memory_mb(pid: int | None) -> dict[str, float]:
    if pid is None:
        return {}
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    values = {k: int(v.split()[0]) / 1024 for k, _, v in (line.partition(":") for line in lines) if v.endswith("kB")}
    return {"rss": values["VmRSS"], "peak": values["VmHWM"], "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


def good_rest() -> str:
    """One good single-image request on a fresh connection: '200', '503', or what went wrong."""
    body = json.dumps({"instances": np.full((1, 28, 28, 1), 0.5).tolist()})
    try:
        connection = http.client.HTTPConnection(FLAGS.host, FLAGS.rest_port, timeout=5)
        connection.request("POST", "/v1/models/mnist:predict", body)
        response = connection.getresponse()
        response.read()
        connection.close()
        return str(response.status)
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__


def good_grpc(stub, message) -> str:
    import grpc

    try:
        stub.Predict(message, timeout=5)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def predict_request(shape: list[int], dtype: int = 1, **values):
    """A PredictRequest for "mnist" with one TensorProto built field by field, as an attacker would."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
    from tensorflow_serving.apis import predict_pb2

    message = predict_pb2.PredictRequest()
    message.model_spec.name = "mnist"
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
    message.inputs["images"].CopyFrom(tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values))
    return message


def grpc_bombs() -> list:
    """The hostile PredictRequests: a million images declared in 49 bytes, dtype 999, ..."""
    return [predict_request([1_000_000, 28, 28, 1], float_val=[0.5]),
            predict_request([1, 28, 28, 1], dtype=999, float_val=[0.5]),
            predict_request([1, 28, 28, 1], tensor_content=b"\0" * 100),
            predict_request([2 ** 40, 28, 28, 1], float_val=[0.5]),
            predict_request([1, 28, 28, 1], float_val=[float("nan")])]


def under_attack(name: str, attack, stop: threading.Event) -> dict:
    """Runs `attack` in the background while timing good requests; memory before, peak, after."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    if FLAGS.pid:
        Path(f"/proc/{FLAGS.pid}/clear_refs").write_text("5")
    before = memory_mb(FLAGS.pid)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"{FLAGS.host}:{FLAGS.grpc_port}"))
    good = predict_request([1, 28, 28, 1], float_val=[0.5])
    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    time.sleep(0.5)
    results: list[tuple[str, float]] = []
    deadline = time.monotonic() + FLAGS.seconds
    while time.monotonic() < deadline:
        for send in (good_rest, lambda: good_grpc(stub, good)):
            start = time.perf_counter()
            results.append((send(), time.perf_counter() - start))
        time.sleep(0.1)
    during = memory_mb(FLAGS.pid)
    stop.set()
    attacker.join(timeout=60)
    time.sleep(1)
    after = memory_mb(FLAGS.pid)
    seconds = np.array([s for _, s in results])
    outcomes = {o: sum(1 for r, _ in results if r == o) for o in sorted({r for r, _ in results})}
    return {"attack": name, "good": len(results), "outcomes": outcomes, "p50_s": float(np.median(seconds)),
            "max_s": float(seconds.max()), "over_1s": int((seconds > 1).sum()),
            "rss_before": before.get("rss"), "rss_peak": after.get("peak"), "rss_after": after.get("rss"),
            "fds_during": during.get("fds")}


def grpc_attack(stop: threading.Event) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    codes: dict[str, int] = {}

    def client() -> None:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"{FLAGS.host}:{FLAGS.grpc_port}"))
        bombs, i = grpc_bombs(), 0
        while not stop.is_set():
            code = good_grpc(stub, bombs[i % len(bombs)])
            codes[code] = codes.get(code, 0) + 1
            i += 1

    return {"run": lambda: _threads(client), "codes": codes}


def rest_bodies_attack(stop: threading.Event) -> dict:
    body = b'{"instances": [' + b"0," * (FLAGS.body_mb * 1024 * 1024 // 2 - 16) + b"0]}"
    codes: dict[str, int] = {}

    def client() -> None:
        while not stop.is_set():
            try:
                connection = http.client.HTTPConnection(FLAGS.host, FLAGS.rest_port, timeout=60)
                connection.request("POST", "/v1/models/mnist:predict", body)
                code = str(connection.getresponse().status)
                connection.close()
            except (OSError, http.client.HTTPException) as e:
                code = type(e).__name__
            codes[code] = codes.get(code, 0) + 1

    return {"run": lambda: _threads(client), "codes": codes}


def connections_attack(stop: threading.Event) -> dict:
    sockets: list[socket.socket] = []
    codes = {"opened": 0, "closed_by_server": 0}

    def run() -> None:
        for i in range(FLAGS.connections):
            try:
                sock = socket.create_connection((FLAGS.host, FLAGS.rest_port), timeout=5)
                if i % 2:
                    sock.sendall(b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n")  # never finished
                sockets.append(sock)
                codes["opened"] += 1
            except OSError:
                pass
        stop.wait()
        for sock in sockets:
            sock.setblocking(False)
            try:
                sock.recv(1 << 16, socket.MSG_PEEK)  # an answer (408, 503) or the end of the stream
                codes["closed_by_server"] += 1
            except BlockingIOError:  # still open, nothing said
                pass
            except OSError:
                codes["closed_by_server"] += 1
            sock.close()

    return {"run": run, "codes": codes}


def _threads(client) -> None:
    threads = [threading.Thread(target=client, daemon=True) for _ in range(FLAGS.hostile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str]) -> None:
    del argv  # unused
    attacks = {"grpc": grpc_attack, "rest_bodies": rest_bodies_attack, "connections": connections_attack}
    print(f"server {FLAGS.host} REST :{FLAGS.rest_port} gRPC :{FLAGS.grpc_port}; {FLAGS.hostile} hostile clients, "
          f"{FLAGS.connections} connections, {FLAGS.seconds:g} s each")
    print("attack       good  outcomes                    p50 s  max s  >1 s  RSS MB before/peak/after  fds  hostile")
    for name in FLAGS.attacks:
        stop = threading.Event()
        attack = attacks[name](stop)
        r = under_attack(name, attack["run"], stop)
        memory = "/".join(f"{r[k]:.0f}" if r[k] is not None else "-" for k in ("rss_before", "rss_peak", "rss_after"))
        print(f"{name:<11} {r['good']:>5}  {json.dumps(r['outcomes']):<26} {r['p50_s']:>6.3f} {r['max_s']:>6.2f} "
              f"{r['over_1s']:>5}  {memory:>24}  {r['fds_during'] or '-':>4}  {json.dumps(attack['codes'])}",
              flush=True)


if __name__ == "__main__":
    app.run(main)
