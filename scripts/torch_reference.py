"""The PyTorch version of this training (../shared/peer/torch_pipeline.py), an epoch at a time in its
own Python, so scripts/benchmark.py can alternate it with the Keras epochs and print their ratio."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class TorchEpochs:
    """One epoch of the PyTorch version per call, on the same images, in its own Python."""

    def __init__(self, python: str, script: Path, train_examples: int, skipped: str = ""):
        self.python, self.script, self.train_examples = python, script, train_examples
        self.skipped, self.ready = skipped, not skipped
        self.epochs: list[tuple[float, float]] = []  # (wall, CPU) seconds
        self.version = ""
        self.folder = tempfile.TemporaryDirectory()

    def next(self) -> None:
        mnist_dir = self.mnist_dir()
        result = subprocess.run([self.python, str(self.script), str(mnist_dir), "1"],
                                capture_output=True, text=True)
        match = re.search(r"^RESULT .*per_epoch=([\d.]+) cpu_per_epoch=([\d.]+)", result.stdout, re.M)
        if result.returncode != 0 or not match:
            self.skipped = f"failed: {(result.stderr.strip().splitlines() or ['no RESULT line'])[-1]}"
            self.ready = False
            return
        self.epochs.append((float(match.group(1)), float(match.group(2))))

    def mnist_dir(self) -> Path:
        """The shipped MNIST, its training set cut to the benchmark's images (gzipped IDX, as it reads)."""
        import gzip
        import shutil

        source = REPO / "mnist_keras" / "data" / "mnist"
        folder = Path(self.folder.name)
        if not any(folder.iterdir()):
            for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
                if self.train_examples and name.startswith("train"):
                    raw = gzip.decompress((source / name).read_bytes())
                    header, size = (16, 784) if "images" in name else (8, 1)
                    count = self.train_examples.to_bytes(4, "big")
                    cut = raw[:4] + count + raw[8:header] + raw[header:header + self.train_examples * size]
                    (folder / name).write_bytes(gzip.compress(cut))
                else:
                    shutil.copy(source / name, folder / name)
        return folder


def torch_epochs_runner(train_examples: int, torch_pipeline: str, torch_python: str = "") -> TorchEpochs:
    """The PyTorch epochs, or why there are none (no torch_pipeline.py, no torch)."""
    script = Path(torch_pipeline)
    script = script if script.is_absolute() else REPO / script
    python = torch_python or sys.executable
    if not script.is_file():
        return TorchEpochs(python, script, train_examples, f"skipped: no {script}")
    probe = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if probe.returncode != 0:
        return TorchEpochs(python, script, train_examples,
                           f"skipped: no torch in {python} (--torch_python; docs/benchmarks.md)")
    runner = TorchEpochs(python, script, train_examples)
    runner.version = probe.stdout.strip()
    return runner
