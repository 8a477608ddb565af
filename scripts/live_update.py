"""Sends gRPC requests while a new version is copied into the base path: none may fail.

    python -m mnist_keras.serve --model_base_path=saved_models/mnist &
    python scripts/live_update.py --grpc 127.0.0.1:8500 --base saved_models/mnist --requests 2000

After a fifth of the requests, the newest version folder is copied (cp -r, as a user
would) to the next number. Prints the errors, the versions that answered, and how long
after the copy began the new version answered first. Removes the copy afterwards unless
--keep.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from absl import app, flags

from mnist_keras.data import datasets

FLAGS = flags.FLAGS
flags.DEFINE_string("grpc", "127.0.0.1:8500", "host:port of the gRPC API.")
flags.DEFINE_string("base", "saved_models/mnist", "The server's --model_base_path.")
flags.DEFINE_integer("requests", 2000, "Requests in all.", lower_bound=10)
flags.DEFINE_integer("clients", 8, "Concurrent clients.", lower_bound=1)
flags.DEFINE_bool("keep", False, "Keep the copied version.")


def main(argv: list[str]) -> None:
    del argv  # unused
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    base = Path(FLAGS.base)
    newest = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    target = base / str(newest + 1)
    images = datasets.load().x_test[:64, :, :, None].astype(np.float32) / 255.0
    requests = []
    for image in images:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(image[None]))
        requests.append(request)
    counter = iter(range(FLAGS.requests))
    lock = threading.Lock()
    answered: list[tuple[float, int]] = []
    errors: list[str] = []
    copy_started = threading.Event()
    copy_time = [0.0]

    def client() -> None:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(FLAGS.grpc))
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            if i == FLAGS.requests // 5 and not copy_started.is_set():
                copy_started.set()
                copy_time[0] = time.perf_counter()
                threading.Thread(target=shutil.copytree, args=(base / str(newest), target)).start()
            try:
                response = stub.Predict(requests[i % len(requests)], timeout=30)
                with lock:
                    answered.append((time.perf_counter(), response.model_spec.version.value))
            except grpc.RpcError as e:
                with lock:
                    errors.append(f"{e.code()}: {e.details()}")

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(FLAGS.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    first_new = [t for t, v in answered if v == newest + 1]
    versions = {v: sum(1 for _, x in answered if x == v) for v in sorted({v for _, v in answered})}
    print(f"{FLAGS.requests} requests from {FLAGS.clients} clients in {wall:.1f} s; errors: {len(errors)}; "
          f"answered by version: {versions}")
    if first_new:
        print(f"version {newest + 1} answered first {first_new[0] - copy_time[0]:.2f} s after its copy began")
    else:
        print(f"version {newest + 1} never answered (send more requests, or poll more often)")
    if errors:
        print(f"first error: {errors[0]}")
    if not FLAGS.keep:
        time.sleep(0.5)
        shutil.rmtree(target, ignore_errors=True)
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    app.run(main)
