"""The TF Serving REST API: every route, both formats, every error, and still serving after."""

from __future__ import annotations

import http.client
import io
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from mnist_keras.data.datasets import scale_images
from tests.helpers import (
    assert_load_script_measures,
    assert_no_library_lines,
    assert_one_line_error,
    call,
    run_module,
    start_server,
)

MAX_INSTANCES = 8


@pytest.fixture(scope="module")
def server(exported):
    out = exported.folder
    process, port = start_server(f"--model_base_path={exported.serving}",
                                 f"--max_instances={MAX_INSTANCES}", "--max_body_mb=1", cwd=out)
    yield port
    process.terminate()
    process.wait(timeout=30)


def images(mnist, n: int, start: int = 0) -> list:
    return scale_images(mnist.x_test[start:start + n]).tolist()


def test_model_status_and_metadata(server):
    status, body = call(server, "GET", "/v1/models/mnist")
    assert status == 200
    assert body == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                              "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(server, "GET", "/v1/models/mnist/versions/1") == (200, body)
    status, body = call(server, "GET", "/v1/models/mnist/metadata")
    assert status == 200 and body["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert signature["outputs"]["classes"]["dtype"] == "DT_INT64"
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"


@pytest.mark.parametrize("path", ["/v1/models/mnist:predict", "/v1/models/mnist/versions/1:predict"])
def test_row_and_columnar_formats_answer_as_the_keras_model(server, mnist, keras_probabilities, path):
    expected = keras_probabilities[:5]
    status, row = call(server, "POST", path, json.dumps({"instances": images(mnist, 5)}))
    assert status == 200
    assert [p["classes"] for p in row["predictions"]] == list(expected.argmax(axis=1))
    np.testing.assert_allclose([p["probabilities"] for p in row["predictions"]], expected, atol=1e-5)

    status, columnar = call(server, "POST", path, json.dumps({"inputs": images(mnist, 5)}))
    assert status == 200
    assert columnar["outputs"]["classes"] == list(expected.argmax(axis=1))
    np.testing.assert_allclose(columnar["outputs"]["probabilities"], expected, atol=1e-5)

    named_rows = [{"images": image} for image in images(mnist, 5)]
    assert call(server, "POST", path, json.dumps({"instances": named_rows,
                                                  "signature_name": "serving_default"}))[1] == row
    assert call(server, "POST", path, json.dumps({"inputs": {"images": images(mnist, 5)}}))[1] == columnar


BAD_REQUESTS = {
    "malformed JSON": ('{"instances": [[[0.5', 400, "JSON Parse error"),
    "not an object": ("[1, 2, 3]", 400, "must be a JSON object"),
    "no instances": ('{"signature_name": "serving_default"}', 400, "Missing 'inputs' or 'instances'"),
    "both formats": ('{"instances": [], "inputs": []}', 400, "either 'inputs' or 'instances'"),
    "unknown signature": ('{"signature_name": "classify", "instances": []}', 400, "not found in signature def"),
    "wrong shape": (json.dumps({"instances": np.zeros((2, 28, 28)).tolist()}), 400, "shape [2, 28, 28]"),
    "ragged": (json.dumps({"instances": [[[0.0]] * 28, [[0.0]] * 27]}), 400, "unequal length"),
    "wrong type": (json.dumps({"instances": [[[["a"]] * 28] * 28]}), 400, "must be numbers"),
    "NaN": ('{"instances": [NaN]}', 400, "NaN is not a number"),
    "out of range": (json.dumps({"instances": np.full((1, 28, 28, 1), 255).tolist()}), 400,
                     "pixels must be scaled to [0, 1]"),
    "too many instances": (json.dumps({"instances": np.zeros((MAX_INSTANCES + 1, 28, 28, 1)).tolist()}),
                           400, f"at most {MAX_INSTANCES}"),
    "body over the limit": ('{"instances": [' + " " * (1024 * 1024) + "]}", 413, "over the"),
    "unknown input name": (json.dumps({"inputs": {"pixels": []}}), 400, "one input: images"),
    "nested too deeply": ("[" * 50_000, 400, "nested too deeply"),
    "booleans": (json.dumps({"instances": [[[[True]] * 28] * 28]}).replace("true", "0.5", 1), 400,
                 "got booleans"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_bad_request_gets_tf_serving_error_and_the_server_keeps_serving(server, mnist, case):
    body, expected_status, fragment = BAD_REQUESTS[case]
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=60)
    for request in (body, json.dumps({"instances": images(mnist, 1)})):  # one keep-alive connection
        connection.request("POST", "/v1/models/mnist:predict", request.encode())
        response = connection.getresponse()
        answers = (response.status, json.loads(response.read()))
        if request is body:
            status, answer = answers
            assert status == expected_status and set(answer) == {"error"}, answer
            assert fragment in answer["error"], answer
    assert answers[0] == 200 and len(answers[1]["predictions"]) == 1
    connection.close()


def test_a_version_number_is_read_as_a_number(server, mnist):
    status, answer = call(server, "POST", "/v1/models/mnist/versions/01:predict",
                          json.dumps({"instances": images(mnist, 1)}))
    assert status == 200 and len(answer["predictions"]) == 1


@pytest.mark.parametrize("method, path, fragment", [
    ("GET", "/v1/models/other", "Servable not found for request: Latest(other)"),
    ("POST", "/v1/models/other:predict", "Servable not found for request: Latest(other)"),
    ("GET", "/v1/models/mnist/versions/2", "Servable not found for request: Specific(mnist, 2)"),
    ("POST", "/v1/models/mnist/versions/2:predict", "Servable not found for request: Specific(mnist, 2)"),
    ("GET", "/v1/nothing/here", "Not Found"),
])
def test_unknown_model_or_version_is_404(server, method, path, fragment):
    status, answer = call(server, method, path, "{}" if method == "POST" else None)
    assert status == 404 and answer == {"error": fragment}


def test_draw_endpoint_reads_an_image_like_predict(server, mnist):
    picture = io.BytesIO()
    Image.fromarray(255 - mnist.x_test[0]).resize((150, 150)).save(picture, "PNG")
    status, answer = call(server, "POST", "/draw", picture.getvalue())
    assert status == 200 and answer["digit"] == mnist.y_test[0]
    assert np.array(answer["image"]).shape == (28, 28) and abs(sum(answer["probabilities"]) - 1) < 1e-4
    status, answer = call(server, "POST", "/draw", b"not an image")
    assert status == 400 and "not an image file" in answer["error"]


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (3, 3)])
def test_draw_answers_400_to_a_tiny_image(server, mnist, size):
    picture = io.BytesIO()
    Image.new("L", size, 255).save(picture, "PNG")
    status, answer = call(server, "POST", "/draw", picture.getvalue())
    assert status == 400 and answer == {"error": f"image: {size[0]}x{size[1]} pixels is too small to hold a "
                                                 "digit (at least 8 pixels one way)"}
    assert call(server, "GET", "/v1/models/mnist")[0] == 200  # and still serving


def test_the_page_is_served(server):
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
    connection.request("GET", "/")
    response = connection.getresponse()
    page = response.read().decode()
    assert response.status == 200 and response.getheader("content-type").startswith("text/html")
    assert '<canvas id="canvas"' in page and 'fetch("draw"' in page


def test_serve_bad_arguments(tmp_path, server):
    result = run_module("mnist_keras.serve", f"--model_base_path={tmp_path / 'none'}", cwd=tmp_path)
    assert_one_line_error(result, "no such folder")
    (tmp_path / "empty").mkdir()
    result = run_module("mnist_keras.serve", f"--model_base_path={tmp_path / 'empty'}", cwd=tmp_path)
    assert_one_line_error(result, "no SavedModel versions")
    (tmp_path / "empty" / "1").mkdir()  # still being copied in: not a version yet, as for the manager
    result = run_module("mnist_keras.serve", f"--model_base_path={tmp_path / 'empty'}", cwd=tmp_path)
    assert_one_line_error(result, "no SavedModel versions")
    (tmp_path / "empty" / "1" / "saved_model.pb").write_bytes(b"")
    result = run_module("mnist_keras.serve", f"--model_base_path={tmp_path / 'empty'}",
                        f"--rest_api_port={server}", cwd=tmp_path)
    assert_one_line_error(result, f"127.0.0.1:{server}: cannot listen")


def test_load_script_reports_throughput_and_latency(server):
    assert_load_script_measures(f"--url=http://127.0.0.1:{server}/v1/models/mnist:predict")


def test_start_up_prints_only_the_servers_own_lines(exported, tmp_path):
    """TensorFlow's start-up lines (absl, oneDNN, cuInit) are hidden; stderr stays empty (issue 27)."""
    with open(tmp_path / "stderr", "w+") as stderr:
        process, port = start_server(f"--model_base_path={exported.serving}", cwd=tmp_path, stderr=stderr)
        try:
            assert call(port, "GET", "/v1/models/mnist")[0] == 200
        finally:
            process.terminate()
            rest, _ = process.communicate(timeout=30)
        stderr.seek(0)
        result = subprocess.CompletedProcess(process.args, process.returncode, rest, stderr.read())
    assert result.stderr == "", result.stderr
    assert_no_library_lines(result)
