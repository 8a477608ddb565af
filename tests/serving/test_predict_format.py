"""TF Serving's REST bodies and the batcher, in-process (the fast tier's serving tests): the row and
columnar formats read to the same images and answer in their own shapes, bad bodies are refused with
TF Serving's 400, and concurrent requests are grouped into one model call and split back."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from mnist_keras.data.datasets import scale_images
from mnist_keras.serving.batching import Batcher, BatchingParameters
from mnist_keras.serving.predict_format import RequestError, format_predict, parse_predict


def test_row_columnar_and_named_bodies_read_as_the_same_images(mnist):
    images = scale_images(mnist.x_test[:3])
    bodies = {"row": {"instances": images.tolist()},
              "row, named": {"instances": [{"images": image} for image in images.tolist()]},
              "columnar": {"inputs": images.tolist()},
              "columnar, named": {"inputs": {"images": images.tolist()}}}
    for name, body in bodies.items():
        parsed, row = parse_predict(json.dumps(body).encode())
        assert row == name.startswith("row"), name
        assert parsed.dtype == np.float32 and parsed.shape == (3, 28, 28, 1), name
        np.testing.assert_array_equal(parsed, images.astype(np.float32), err_msg=name)


def test_answers_take_the_requests_format():
    outputs = {"classes": np.array([7, 2]), "probabilities": np.eye(10)[[7, 2]]}
    row = format_predict(outputs, row=True)
    assert [p["classes"] for p in row["predictions"]] == [7, 2]
    assert row["predictions"][1]["probabilities"][2] == 1.0
    assert format_predict(outputs, row=False) == {"outputs": {"classes": [7, 2],
                                                              "probabilities": np.eye(10)[[7, 2]].tolist()}}


BLANK = np.zeros((28, 28, 1)).tolist()
BAD_BODIES = [
    (b"{not json", "JSON Parse error"),
    (b"[1, 2]", "must be a JSON object"),
    (json.dumps({"instances": [BLANK], "inputs": [BLANK]}).encode(), "either 'inputs' or 'instances'"),
    (json.dumps({"signature_name": "other", "instances": [BLANK]}).encode(), '"other" not found'),
    (json.dumps({"instances": [np.zeros((28, 28)).tolist()]}).encode(), "expected [N, 28, 28, 1]"),
    (json.dumps({"instances": [np.full((28, 28, 1), 255).tolist()]}).encode(), "scaled to [0, 1]"),
    (json.dumps({"instances": [BLANK]}).replace("0.0", "NaN", 1).encode(), "NaN is not a number"),
    (json.dumps({"instances": [BLANK]}).replace("0.0", "true", 1).encode(), "got booleans"),
    (json.dumps({"instances": [BLANK] * 3}).encode(), "at most 2 images"),
]


@pytest.mark.parametrize("body, fragment", BAD_BODIES, ids=[f for _, f in BAD_BODIES])
def test_a_bad_body_is_refused_with_a_400_naming_what_is_wrong(body, fragment):
    with pytest.raises(RequestError) as refused:
        parse_predict(body, max_instances=2)
    assert refused.value.status == 400 and fragment in str(refused.value), str(refused.value)


def test_the_batcher_groups_concurrent_requests_and_splits_the_answers_back(training_run, mnist):
    """The trained Keras model behind the batcher: each request gets its own images' answers."""
    model = training_run.model
    sizes: list[int] = []

    def run(images: np.ndarray) -> dict:
        sizes.append(len(images))
        return {"logits": np.asarray(model(images, training=False))}

    images = scale_images(mnist.x_test[:8]).astype(np.float32)
    expected = run(images)["logits"]
    sizes.clear()
    batcher = Batcher(run, BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    answers: dict = {}
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, batcher.submit(images[i:i + 1])))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for i in range(8):
        np.testing.assert_allclose(answers[i]["logits"], expected[i:i + 1], atol=1e-4)
    assert max(sizes) > 1 and sum(sizes) == 8  # grouped, and every image run once
    batcher.close()
