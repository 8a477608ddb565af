"""The server under hostile input (issue 26): each request's cost bounded before any work,
connections bounded, and the server's memory measured around each attack."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import assert_one_line_error, free_port, request, run_module, scaled, start_server

MAX_BODY = 4 * 1024 * 1024  # --max_body_mb=4
TIMEOUT_S = 3.0  # --rest_api_timeout_in_ms
MAX_CONNECTIONS = 40
LEGAL_BYTES = 1024 * 28 * 28 * 4  # the largest legal request's images: 1,024 (--max_instances) float32


@pytest.fixture(scope="module")
def hostile_server(exported, tmp_path_factory):
    """The server with a small body limit, a short request deadline and a small connection cap."""
    out = exported.folder
    log = tmp_path_factory.mktemp("hostile") / "stderr.log"
    grpc_port = free_port()
    with log.open("w") as stderr:
        process, port = start_server(
            f"--model_base_path={exported.serving}", f"--port={grpc_port}", "--max_body_mb=4",
            f"--rest_api_timeout_in_ms={int(TIMEOUT_S * 1000)}", f"--rest_api_max_connections={MAX_CONNECTIONS}",
            cwd=out, stderr=stderr)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield {"rest": port, "pid": process.pid, "log": log,
           "predict": prediction_service_pb2_grpc.PredictionServiceStub(channel)}
    channel.close()
    process.terminate()
    process.wait(timeout=30)


def memory_kb(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if v.endswith("kB")}


def peak_rise_bytes(pid: int, action) -> int:
    """How far the server's resident memory peaks above where it was, while `action` runs."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
    before = memory_kb(pid)["VmRSS"]
    action()
    return (memory_kb(pid)["VmHWM"] - before) * 1024


def tensor(shape: list[int], dtype: int = 1, **values) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values)


def raw_request(images: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "mnist"
    message.inputs["images"].CopyFrom(images)
    return message


def assert_invalid(stub, message, *fragments: str) -> float:
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(message, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value
    for fragment in fragments:
        assert fragment in raised.value.details(), raised.value.details()
    assert "\n" not in raised.value.details()
    return time.perf_counter() - start


# --- gRPC: the declared cost, checked first --------------------------------------------------

def test_a_tiny_request_declaring_a_million_images_costs_nothing(hostile_server, mnist):
    stub, pid = hostile_server["predict"], hostile_server["pid"]
    bomb = raw_request(tensor([1_000_000, 28, 28, 1], float_val=[0.5]))
    assert len(bomb.SerializeToString()) < 64  # 49 bytes with model_spec.name "mnist"
    elapsed = []
    rise = peak_rise_bytes(pid, lambda: elapsed.append(assert_invalid(stub, bomb, "1000000 images", "at most 1024")))
    assert elapsed[0] < 1.0 and rise < 2 * LEGAL_BYTES, (elapsed, rise)
    legal = request(np.resize(scaled(mnist, 64), (1024, 28, 28, 1)))
    legal_rise = peak_rise_bytes(pid, lambda: stub.Predict(legal, timeout=60))
    print(f"peak RSS rise: hostile {rise / 1e6:.1f} MB, the largest legal request {legal_rise / 1e6:.1f} MB")


@pytest.mark.parametrize("images, fragments", [
    (tensor([1, 28, 28, 1], dtype=999, float_val=[0.5]), ["float but an invalid dtype (999)"]),
    (tensor([1, 28, 28, 1], tensor_content=b"\0" * 100), ["100 bytes", "3136 bytes"]),
    (tensor([1, 28, 28, 1], float_val=[0.5] * 7), ["7 values", "784 values"]),
    (tensor([2 ** 40, 28, 28, 1], float_val=[0.5]), [f"{2 ** 40} images", "at most 1024"]),
    (tensor([1, 2 ** 40, 2 ** 40, 1], float_val=[0.5]), ["expected [N, 28, 28, 1]"]),
    (tensor([-1, 28, 28, 1], float_val=[0.5]), ["no images"]),
    (tensor([1, 28, 28, 1], float_val=[float("nan")]), ["NaN or infinity"]),
    (tensor([1, 28, 28, 1], float_val=[0.0] * 783 + [float("inf")]), ["NaN or infinity"]),
], ids=["dtype 999", "tensor_content short", "float_val short", "2^40 images", "2^40 pixels", "no images", "NaN",
        "infinity"])
def test_grpc_bad_tensors_are_invalid_argument_without_a_traceback(hostile_server, mnist, images, fragments):
    assert_invalid(hostile_server["predict"], raw_request(images), *fragments)
    assert "Traceback" not in hostile_server["log"].read_text()
    assert hostile_server["predict"].Predict(request(scaled(mnist, 1)), timeout=30).model_spec.version.value == 1


def test_nan_and_infinity_are_refused_alike_over_rest_and_grpc(hostile_server):
    image = np.zeros((1, 28, 28, 1)).tolist()
    image[0][3][4][0] = 1e999  # JSON's way to write infinity without the Infinity literal
    status, answer = post(hostile_server["rest"], json.dumps({"instances": image}).replace("Infinity", "1e999"))
    assert status == 400 and "NaN or infinity" in answer["error"], answer
    assert_invalid(hostile_server["predict"], raw_request(tensor([1, 28, 28, 1], float_val=[float("nan")])),
                   "NaN or infinity")


# --- REST: bodies counted as they arrive -----------------------------------------------------

def post(port: int, body: str | bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/v1/models/mnist:predict", body)
    response = connection.getresponse()
    answer = (response.status, json.loads(response.read()))
    connection.close()
    return answer


def read_response(sock: socket.socket, limit_s: float = 10) -> bytes:
    """What the server sends until it closes (or limit_s passes)."""
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_an_over_limit_body_is_refused_413_without_being_read_whole(hostile_server):
    port, pid = hostile_server["rest"], hostile_server["pid"]
    sent = 0

    def attack() -> bytes:
        nonlocal sent
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
            sock.settimeout(0.5)
            try:
                while sent < 4 * MAX_BODY:  # never finished: 64 MB announced in pieces, 4 MB sent at most
                    sock.sendall(chunk)
                    sent += 0x10000
            except (TimeoutError, OSError):
                pass
            return read_response(sock)

    answer = []
    rise = peak_rise_bytes(pid, lambda: answer.append(attack()))
    assert answer[0].startswith(b"HTTP/1.1 413 "), answer[0][:200]
    assert b"over the 4194304-byte limit" in answer[0]
    assert rise < 2 * MAX_BODY, rise
    with socket.create_connection(("127.0.0.1", port)) as sock:  # declared too large: refused before any byte
        sock.sendall(b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")


def test_too_many_values_are_refused_before_the_json_is_decoded(hostile_server):
    body = '{"instances": [' + ",".join(["0"] * (MAX_BODY // 2 - 20)) + "]}"
    answer = []
    rise = peak_rise_bytes(hostile_server["pid"], lambda: answer.append(post(hostile_server["rest"], body)))
    status, payload = answer[0]
    assert status == 400 and "values, more than 1024 images" in payload["error"], payload
    assert rise < 2 * MAX_BODY + LEGAL_BYTES, rise  # the body itself, not its decoded lists


# --- REST: connections bounded ---------------------------------------------------------------

def test_a_request_sent_half_is_answered_408_and_closed_after_the_deadline(hostile_server):
    for partial in (b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n",  # half its headers
                    b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"):  # body
        with socket.create_connection(("127.0.0.1", hostile_server["rest"])) as sock:
            sock.sendall(partial)
            start = time.perf_counter()
            answer = read_response(sock, limit_s=TIMEOUT_S + 5)
            elapsed = time.perf_counter() - start
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert TIMEOUT_S - 0.1 < elapsed < TIMEOUT_S + 2, elapsed


def test_idle_and_half_sent_connections_past_the_cap_leave_good_requests_answered(hostile_server, mnist):
    port, pid = hostile_server["rest"], hostile_server["pid"]
    fds_before = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    good = json.dumps({"instances": scaled(mnist, 1).tolist()})
    sockets = []
    try:
        for i in range(2 * MAX_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                sock.sendall(b"GET /v1/models/mnist HTTP/1.1\r\nHost: x\r\n")  # never finished
            sockets.append(sock)
        time.sleep(1.2)  # those that made room have lingered and gone; the deadline is 3 s
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        assert fds <= fds_before + MAX_CONNECTIONS + 5, (fds_before, fds)
        closed, _, _ = select.select(sockets[:MAX_CONNECTIONS], [], [], 0)  # answered or closed: readable
        assert len(closed) >= MAX_CONNECTIONS - 2, len(closed)  # the oldest made room
        start = time.perf_counter()
        status, answer = post(port, good)
        assert status == 200 and len(answer["predictions"]) == 1, answer
        assert time.perf_counter() - start < 1.0
    finally:
        for sock in sockets:
            sock.close()


# --- Flags ------------------------------------------------------------------------------------

def test_a_bad_grpc_channel_argument_is_one_line(tmp_path):
    result = run_module("mnist_keras.serve", "--grpc_channel_arguments=grpc.max_concurrent_streams",
                        f"--model_base_path={tmp_path}", cwd=tmp_path)
    assert_one_line_error(result, "--grpc_channel_arguments", "not key=value")


def test_grpc_channel_arguments_override_the_limits():
    from mnist_keras.serving.grpc_service import channel_options

    options = dict(channel_options(1024))
    assert options["grpc.max_concurrent_streams"] == 100
    assert LEGAL_BYTES < options["grpc.max_receive_message_length"] < 2 * LEGAL_BYTES
    options = dict(channel_options(8, "grpc.max_concurrent_streams=4, grpc.max_connection_age_ms=2000"))
    assert options["grpc.max_concurrent_streams"] == 4 and options["grpc.max_connection_age_ms"] == 2000
    assert options["grpc.max_receive_message_length"] < 100_000
