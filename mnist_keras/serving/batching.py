"""--enable_batching: concurrent requests grouped into one signature call, as TF Serving's batcher.

A request waits at most batch_timeout_micros for others to join it, never past
max_batch_size images; num_batch_threads batches run at once; past max_enqueued_batches
waiting, a request is refused (UNAVAILABLE), as TF Serving's queue refuses.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_keras.errors import InputError


@dataclass
class BatchingParameters:
    max_batch_size: int = 1000  # TF Serving's defaults (batching_session.h / server flags)
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 100
    num_batch_threads: int = 4


class QueueFull(RuntimeError):
    """The batch queue is full: TF Serving answers UNAVAILABLE (HTTP 503)."""


def read_batching_parameters(path: Path | None) -> BatchingParameters:
    """A batching.config (BatchingParameters text: `max_batch_size { value: 32 }` ...)."""
    from mnist_keras.serving.protos import batching_parameters, read_text_proto

    parameters = BatchingParameters()
    if path is None:
        return parameters
    proto = read_text_proto(path, batching_parameters(), "batching_parameters_file")
    for key in BatchingParameters.__dataclass_fields__:
        if proto.HasField(key):
            number = getattr(proto, key).value
            if number < (0 if key == "batch_timeout_micros" else 1):
                raise InputError(f"--batching_parameters_file={path}: {key} is {number}; it must be positive")
            setattr(parameters, key, number)
    return parameters


class Batcher:
    """Groups the images of concurrent submit() calls into calls of run(images) -> {name: array}."""

    def __init__(self, run, parameters: BatchingParameters):
        self.run, self.parameters = run, parameters
        self._queue: queue.Queue = queue.Queue()
        self._pending = threading.Semaphore(parameters.max_enqueued_batches * parameters.max_batch_size)
        self._closed = False
        self._lock = threading.Lock()  # close() and enqueueing: nothing lands behind the stop mark
        self._threads = [threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
                         for i in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Blocks until the batch holding these images has run; its share of the outputs."""
        if len(images) > self.parameters.max_batch_size:
            return self.run(images)  # too big to share a batch: runs alone
        if not self._pending.acquire(blocking=False):
            raise QueueFull("The batch scheduling queue to which this task was submitted is full")
        future: Future = Future()
        with self._lock:
            closed = self._closed
            if not closed:
                self._queue.put((images, future))
        if closed:  # an unloading version finishes what it is given
            self._pending.release()
            return self.run(images)
        try:
            return future.result()
        finally:
            self._pending.release()

    def _work(self) -> None:
        limit = self.parameters.max_batch_size
        timeout = self.parameters.batch_timeout_micros / 1e6
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.put(None)  # for the other threads
                return
            batch, size = [first], len(first[0])
            deadline = time.perf_counter() + timeout
            while size < limit:
                try:  # whatever is already queued joins at once; then wait out the timeout
                    item = self._queue.get_nowait()
                except queue.Empty:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        item = self._queue.get(timeout=left)
                    except queue.Empty:
                        break
                if item is None:
                    self._queue.put(None)  # let the other threads see it too
                    break
                if size + len(item[0]) > limit:
                    self._queue.put(item)  # starts the next batch (order among peers is not kept)
                    break
                batch.append(item)
                size += len(item[0])
            self._run_batch(batch)

    def _run_batch(self, batch: list) -> None:
        try:
            outputs = self.run(np.concatenate([images for images, _ in batch]))
        except Exception as e:
            for _, future in batch:
                future.set_exception(e)
            return
        start = 0
        for images, future in batch:
            end = start + len(images)
            future.set_result({name: value[start:end] for name, value in outputs.items()})
            start = end

    def close(self) -> None:
        """Requests already queued still run; later ones run unbatched."""
        with self._lock:
            self._closed = True
            self._queue.put(None)
