"""TF Serving as its users run it: export's warmup and configs read by TF Serving's protos, the
server started with compose.yaml's own flags, driven by tensorflow-serving-api's gRPC stubs,
batching, metrics, and a new version going live under load without a failed request."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from mnist_keras.exporting import serving_files
from mnist_keras.serving import protos as serving_protos
from tests.helpers import (
    REPO,
    assert_load_script_measures,
    assert_one_line_error,
    free_port,
    request,
    run_module,
    scaled,
)

# --- What export writes --------------------------------------------------------------------

def test_export_writes_configs_that_tf_serving_protos_read(exported):
    import yaml

    base = exported.serving
    config = text_format.Parse((base / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("mnist", "/models/serving", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 1
    batching = text_format.Parse((base / "batching.config").read_text(), serving_protos.batching_parameters())
    assert batching.max_batch_size.value == 32 and batching.batch_timeout_micros.value > 0
    monitoring = text_format.Parse((base / "monitoring.config").read_text(), serving_protos.monitoring_config())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"
    import tensorflow as tf

    service = yaml.safe_load((base / "compose.yaml").read_text())["services"]["serving"]
    assert service["image"] == f"tensorflow/serving:{tf.__version__}"
    assert service["volumes"] == ["./:/models/serving:ro"]
    assert "--model_config_file=/models/serving/models.config" in service["command"]


def test_warmup_requests_are_real_digits_that_the_signature_answers(exported, mnist, keras_probabilities):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    version = exported.serving / "1"
    records = list(tf.data.TFRecordDataset(str(version / "assets.extra" / "tf_serving_warmup_requests")))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert 0 < len(logs) <= 1000
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    sizes = []
    for log in logs:
        images = tf.make_ndarray(log.predict_log.request.inputs["images"])
        sizes.append(len(images))
        np.testing.assert_array_equal(images[:32], scaled(mnist, len(images[:32])))
        outputs = signature(images=tf.constant(images))
        np.testing.assert_array_equal(outputs["classes"].numpy()[:32],
                                      keras_probabilities[:len(images[:32])].argmax(axis=1))
    assert sizes == [1, 8, 32]


# --- The server, started with compose.yaml's command line ---------------------------------

@pytest.fixture(scope="module")
def tf_server(exported, tmp_path_factory):
    """compose.yaml's flags, the container paths mapped onto a copy of the base path."""
    import yaml

    base = tmp_path_factory.mktemp("live") / "serving"
    shutil.copytree(exported.serving, base)
    command = yaml.safe_load((base / "compose.yaml").read_text())["services"]["serving"]["command"]
    rest = free_port()
    args = [a.replace("/models/serving", str(base)) for a in command
            if not a.startswith(("--port=", "--rest_api_port=", "--file_system_poll_wait_seconds="))]
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_keras.serve", "--port=0", f"--rest_api_port={rest}",
         "--file_system_poll_wait_seconds=0.5", *args], cwd=base.parent,
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        match = re.search(r"gRPC at 127\.0\.0\.1:(\d+)", line)
        if match:
            break
    else:
        raise AssertionError("server did not start: " + "".join(lines))
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{match.group(1)}")
    yield {"channel": channel, "grpc": int(match.group(1)), "rest": rest, "base": base, "log": lines,
           "predict": prediction_service_pb2_grpc.PredictionServiceStub(channel),
           "models": model_service_pb2_grpc.ModelServiceStub(channel)}
    channel.close()
    process.terminate()
    process.wait(timeout=30)


def test_grpc_predict_answers_as_the_keras_model(tf_server, mnist, keras_probabilities):
    response = tf_server["predict"].Predict(request(scaled(mnist, 5)), timeout=30)
    import tensorflow as tf

    assert response.model_spec.name == "mnist" and response.model_spec.version.value == 1
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["classes"]), keras_probabilities[:5].argmax(1))
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]), keras_probabilities[:5],
                               atol=1e-5)
    pinned = tf_server["predict"].Predict(request(scaled(mnist, 1), version=1), timeout=30)
    assert pinned.model_spec.version.value == 1


@pytest.mark.parametrize("make, code, fragment", [
    (lambda m: request(scaled(m, 1), name="other"), grpc.StatusCode.NOT_FOUND, "Latest(other)"),
    (lambda m: request(scaled(m, 1), version=7), grpc.StatusCode.NOT_FOUND, "Specific(mnist, 7)"),
    (lambda m: request(scaled(m, 1), input_name="pixels"), grpc.StatusCode.INVALID_ARGUMENT, "pixels"),
    (lambda m: request(np.zeros((1, 28, 28)), dtype=np.float32), grpc.StatusCode.INVALID_ARGUMENT,
     "expected [N, 28, 28, 1]"),
    (lambda m: request(scaled(m, 1), dtype=np.float64), grpc.StatusCode.INVALID_ARGUMENT,
     "to be float but double"),
])
def test_grpc_errors_carry_tf_serving_status_codes(tf_server, mnist, make, code, fragment):
    with pytest.raises(grpc.RpcError) as raised:
        tf_server["predict"].Predict(make(mnist), timeout=30)
    assert raised.value.code() == code and fragment in raised.value.details()
    tf_server["predict"].Predict(request(scaled(mnist, 1)), timeout=30)  # still serving


def test_grpc_metadata_and_status(tf_server):
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata_request.model_spec.name = "mnist"
    metadata = tf_server["predict"].GetModelMetadata(metadata_request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    inputs = signatures.signature_def["serving_default"].inputs["images"]
    assert [d.size for d in inputs.tensor_shape.dim] == [-1, 28, 28, 1]
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "mnist"
    (status,) = tf_server["models"].GetModelStatus(status_request, timeout=30).model_version_status
    assert (status.version, status.state) == (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    status_request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as raised:
        tf_server["models"].GetModelStatus(status_request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_batching_groups_concurrent_requests_and_metrics_count_them(tf_server, mnist):
    stub = tf_server["predict"]
    results: list = []

    def client(i: int) -> None:
        for j in range(10):
            response = stub.Predict(request(scaled(mnist, 1, start=i * 10 + j)), timeout=30)
            results.append(int(response.outputs["classes"].int64_val[0]
                               if response.outputs["classes"].int64_val else
                               np.frombuffer(response.outputs["classes"].tensor_content, np.int64)[0]))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 160
    connection = http.client.HTTPConnection("127.0.0.1", tf_server["rest"], timeout=30)
    connection.request("GET", "/monitoring/prometheus/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    assert response.status == 200
    count = re.search(r'tensorflow_serving_batch_size_count\{model_name="mnist",model_version="1"\} (\S+)', text)
    total = re.search(r'tensorflow_serving_batch_size_sum\{model_name="mnist",model_version="1"\} (\S+)', text)
    assert float(total.group(1)) / float(count.group(1)) > 1.2  # many calls held several requests
    requests = re.search(r'tensorflow_serving_request_count_total\{api="grpc",model_name="mnist",'
                         r'model_version="1",status="ok"\} (\S+)', text)
    assert requests and float(requests.group(1)) >= 160
    assert 'tensorflow_serving_request_latency_seconds_bucket{api="grpc"' in text


def test_a_new_version_goes_live_under_load_and_a_broken_one_is_reported(tf_server, mnist):
    stub, base = tf_server["predict"], tf_server["base"]
    versions: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                versions.append(stub.Predict(request(scaled(mnist, 1)), timeout=30).model_spec.version.value)
            except grpc.RpcError as e:
                errors.append(f"{e.code()}: {e.details()}")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    shutil.copytree(base / "1", base / "2")  # copied in place, as a user would
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "mnist"
    deadline = time.monotonic() + 30
    states: dict = {}
    while time.monotonic() < deadline:
        states = {s.version: s.state for s in
                  tf_server["models"].GetModelStatus(status_request, timeout=30).model_version_status}
        if states.get(1) == get_model_status_pb2.ModelVersionStatus.END:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert states == {2: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
                      1: get_model_status_pb2.ModelVersionStatus.END}, tf_server["log"]
    assert not errors and len(versions) > 20
    assert versions[0] == 1 and versions[-1] == 2 and sorted(versions) == versions
    # A broken version 3: reported, and version 2 keeps serving.
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    connection = http.client.HTTPConnection("127.0.0.1", tf_server["rest"], timeout=30)
    reported = re.compile(r'"version":"3","state":"END","status":\{"error_code":"UNKNOWN","error_message":"[^"]+3')
    deadline, body = time.monotonic() + 20, ""
    while time.monotonic() < deadline and not reported.search(body):
        time.sleep(0.3)
        connection.request("GET", "/v1/models/mnist")
        body = connection.getresponse().read().decode()
    assert reported.search(body), body
    assert stub.Predict(request(scaled(mnist, 1)), timeout=30).model_spec.version.value == 2


def test_load_script_speaks_grpc(tf_server):
    assert_load_script_measures(f"--grpc=127.0.0.1:{tf_server['grpc']}")


# --- Flags ----------------------------------------------------------------------------------

def test_unsupported_and_conflicting_flags_are_one_line(tmp_path, exported):
    base = exported.serving
    result = run_module("mnist_keras.serve", f"--model_base_path={base}", "--ssl_config_file=x", cwd=tmp_path)
    assert_one_line_error(result, "--ssl_config_file", "does not support")
    result = run_module("mnist_keras.serve", f"--model_base_path={base}",
                        f"--model_config_file={base / 'models.config'}", cwd=tmp_path)
    assert_one_line_error(result, "give one, not both")
    (tmp_path / "bad.config").write_text("model_config_list { config { nme: 1 } }")
    result = run_module("mnist_keras.serve", f"--model_config_file={tmp_path / 'bad.config'}", cwd=tmp_path)
    assert_one_line_error(result, "bad.config", "not a ModelServerConfig")
    result = run_module("mnist_keras.serve", f"--model_base_path={base}", "--enable_batching",
                        f"--batching_parameters_file={base / 'models.config'}", cwd=tmp_path)
    assert_one_line_error(result, "models.config", "not a BatchingParameters")


@pytest.mark.parametrize("flag", ["--use_tflite_model", "--noenable_profiler", "--xla_cpu_compilation_enabled=true",
                                  "--grpc_socket_path=/tmp/s"])
def test_an_unsupported_tf_serving_flag_is_refused_as_written_for_tf_serving(flag, tmp_path):
    """Booleans written bare, as for tensorflow_model_server, get the refusal too, before any model is read."""
    result = run_module("mnist_keras.serve", f"--model_base_path={tmp_path / 'none'}", flag, cwd=tmp_path)
    assert_one_line_error(result, f"--{flag.lstrip('-').removeprefix('no').split('=')[0]}", "does not support")


def test_specific_version_policy_serves_the_named_version(exported, tmp_path):
    from mnist_keras.serving.model_manager import ModelManager, Policy, read_model_config

    base = tmp_path / "serving"
    shutil.copytree(exported.serving, base)
    shutil.copytree(base / "1", base / "2")
    (base / "specific.config").write_text(serving_files.model_config_text("mnist", str(base), versions=[1]))
    name, path, specific, latest = read_model_config(base / "specific.config")
    manager = ModelManager(name, path, Policy(specific, latest, poll_seconds=0, warmup=False), log=lambda line: None)
    manager.start()
    assert [s.version for s in manager.statuses("mnist")] == [1]
    assert manager.resolve("mnist").version == 1
    # export's own models.config names the container path; beside its versions it finds them.
    assert read_model_config(base / "models.config")[1] == base


def test_a_served_version_runs_through_the_predictor_that_predict_uses(exported, mnist):
    """The server's answer and load_predictor's for the same version agree: one way to run a model."""
    from mnist_keras.inference.predictor import load_predictor
    from mnist_keras.serving.model_manager import load_version

    loaded = load_version("mnist", 1, exported.serving / "1", warmup=False)
    assert loaded.predictor.format == "savedmodel" and loaded.outputs == ("classes", "digit_score", "probabilities")
    served = loaded.call(scaled(mnist, 16))
    probabilities, scores = load_predictor(exported.serving / "1")(mnist.x_test[:16])
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-6)
    np.testing.assert_allclose(served["digit_score"], scores, atol=1e-6)
    np.testing.assert_array_equal(served["classes"], probabilities.argmax(axis=1))
    empty = load_predictor(exported.serving / "1")(mnist.x_test[:0])  # no images: no signature call
    assert empty[0].shape == (0, 10) and empty[1].shape == (0,)


def test_batcher_groups_requests_and_splits_answers_back(exported, mnist):
    from mnist_keras.serving.batching import Batcher, BatchingParameters
    from mnist_keras.serving.model_manager import load_version

    loaded = load_version("mnist", 1, exported.serving / "1")
    sizes: list[int] = []

    def run(images: np.ndarray) -> dict:
        sizes.append(len(images))
        return loaded.call(images)

    batcher = Batcher(run, BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    answers: dict = {}
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, batcher.submit(scaled(mnist, 1, i))))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    expected = loaded.call(scaled(mnist, 8))
    for i in range(8):
        np.testing.assert_allclose(answers[i]["probabilities"], expected["probabilities"][i:i + 1], atol=1e-6)
    assert max(sizes) > 1 and sum(sizes) == 8
    batcher.close()
    after = batcher.submit(scaled(mnist, 2))  # a closed (unloading) batcher still answers, unbatched
    np.testing.assert_array_equal(after["classes"], expected["classes"][:2])
