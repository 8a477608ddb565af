"""How fast training and inference are, against the arithmetic floor of this machine.

    python scripts/benchmark.py                 # ~1.5 minutes: 3 training runs, all artifacts
    python scripts/benchmark.py --quick         # seconds: a tiny setting, every row

Rows (each the median of --repeats measurements, with min-max; the floors use the fastest
of 5-20 runs of one large product, since nothing runs faster than its best):
- training: the second epoch of `python -m mnist_keras.train --epochs 2 --validation_examples=0` (the first
  includes tracing), wall time and CPU-seconds, images per second, and the ratio to the
  floor: the epoch's FLOPs over the matrix-product speed this machine reaches, float32 and
  bfloat16, measured here with TensorFlow;
- inference: each exported .tflite (LiteRT, one thread) as the median of single-image
  invokes with the input already in place (no Python-side copies), and batched throughput
  (batches of 1,000, all cores) for the .tflite files, the Keras model and the SavedModel;
  the fixed cost of one invoke (a one-op model), and the int8 floor: the model's multiply-adds
  over the speed of LiteRT's own int8 matrix product on one thread, built and timed here
  (1024x1024 weights on 256 rows; 256x256 on 64 with --quick);
- start-up: `python -m mnist_keras.predict one.png` with the default .tflite, wall time.
Needs a trained and exported model (python -m mnist_keras.train; python -m mnist_keras.export).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import flags, logging
from torch_reference import TorchEpochs, torch_epochs_runner  # beside this script

from mnist_keras import cli

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 3, "Measurements per row; the median is printed.", lower_bound=1)
flags.DEFINE_integer("train_examples", 0, "Training images per epoch (0: all 60,000, no validation split).",
                     lower_bound=0)
flags.DEFINE_integer("invokes", 10_000, "Single-image invokes per .tflite latency.", lower_bound=10)
flags.DEFINE_string("model", "saved_models/mnist.keras", "The Keras model.")
flags.DEFINE_string("saved_model", "saved_models/mnist", "SavedModel versions (the newest is used).")
flags.DEFINE_string("export_dir", "export", "Where the .tflite files are.")
flags.DEFINE_list("train_flags", [], "Extra flags for the training runs, e.g. --train_flags=--jit_compile=true.")
flags.DEFINE_bool("quick", False, "A tiny setting that still prints every row (for tests).")
flags.DEFINE_string("torch_pipeline", "../shared/peer/torch_pipeline.py",
                    "The PyTorch version of this training, for the ratio row (relative to the repository root).")
flags.DEFINE_string("torch_python", "", "A Python with torch installed (a separate venv, docs/benchmarks.md); "
                    "empty: this Python, if it has torch.")

REPO = Path(__file__).resolve().parent.parent
TRAIN_IMAGES = 60_000


def multiply_adds_per_image() -> int:
    """One image through the model: conv1 0.23 M, conv2 3.61 M, dense 0.40 M, logits 0.001 M."""
    conv1 = 28 * 28 * 32 * 3 * 3 * 1
    conv2 = 14 * 14 * 64 * 3 * 3 * 32
    dense = 7 * 7 * 64 * 128 + 128 * 10
    return conv1 + conv2 + dense


def flops_per_training_image() -> float:
    """Forward multiply-adds x 2, and x 3 for forward + backward (two matrix products each)."""
    return 3 * 2 * multiply_adds_per_image()


def matmul_flops_per_second(dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """What one large matrix product reaches here: the speed no layer of this model can beat."""
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    multiply = tf.function(lambda x: tf.matmul(x, x))
    multiply(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        multiply(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / min(times)


def int8_tflite(model, calibration: np.ndarray, batch: int):
    """A full-integer (int8 in and out) LiteRT interpreter for a Keras model, one thread."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.inference.litert import quiet_stderr

    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        flatbuffer = converter.convert()
    with quiet_stderr():
        interpreter = Interpreter(model_content=flatbuffer, num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    interpreter.allocate_tensors()
    return interpreter


def int8_matmul_multiply_adds_per_second(size: int, batch: int, repeats: int = 20) -> float:
    """What LiteRT's int8 matrix product reaches on one thread: the speed no int8 layer beats."""
    import keras

    inputs = keras.Input((size,))
    model = keras.Model(inputs, keras.layers.Dense(size, use_bias=False)(inputs))
    interpreter = int8_tflite(model, np.random.default_rng(0).random((20, size), np.float32), batch)
    interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return batch * size * size / min(times)


def invoke_fixed_cost(invokes: int, repeats: int) -> list[float]:
    """Median seconds per invoke of an int8 model of one ReLU, per repeat: what any call pays."""
    import keras

    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.ReLU()(inputs))
    interpreter = int8_tflite(model, np.random.default_rng(0).random((20, 28, 28, 1), np.float32), 1)
    return [float(np.median(time_invokes(interpreter, invokes))) for _ in range(repeats)]


def median_spread(values: list[float], digits: int = 1, unit: str = "") -> str:
    values = sorted(values)
    middle = float(np.median(values))
    if len(values) == 1:
        return f"{middle:.{digits}f}{unit}"
    return f"{middle:.{digits}f}{unit} ({values[0]:.{digits}f}-{values[-1]:.{digits}f})"


def training_epochs(repeats: int, train_examples: int, extra: list[str],
                    between=None) -> tuple[list[tuple[float, float]], str, str]:
    """(wall, CPU) of the second epoch of each of `repeats` training runs; precision; batch.

    between(): called after each run (the PyTorch epochs alternate with these).
    """
    pattern = re.compile(r"^Epoch 2/2: .*, ([\d.]+) s \(([\d.]+) CPU-s\)", re.M)
    epochs, precision, batch = [], "", ""
    for _ in range(repeats):
        if between is not None and epochs:
            between()
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run(
                [sys.executable, "-m", "mnist_keras.train", "--epochs=2", "--progress=none",
                 f"--model_dir={folder}", f"--train_examples={train_examples}", "--validation_examples=0",
                 "--test_examples=1000",
                 *extra], capture_output=True, text=True, cwd=REPO,
                env=dict(os.environ, PYTHONPATH=str(REPO)))
        match = pattern.search(result.stdout)
        if result.returncode != 0 or not match:
            raise SystemExit(f"training failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        epochs.append((float(match.group(1)), float(match.group(2))))
        precision = re.search(r"^Precision: (\S+) \(", result.stdout, re.M).group(1)
        batch = re.search(r"global batch (\d+)", result.stdout).group(1)
    if between is not None:
        between()
    return epochs, precision, batch


def tflite_latency(path: Path, image: np.ndarray, invokes: int) -> list[float]:
    """Seconds per invoke, one thread, input set once: LiteRT's own time, not Python's."""
    from mnist_keras.inference import litert

    interpreter = litert.load(path, num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], (1, 28, 28, 1))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], litert.to_input(image[None], detail))
    return time_invokes(interpreter, invokes)


def time_invokes(interpreter, invokes: int) -> list[float]:
    """Each invoke timed alone; the Python call around it costs ~0.2 us of the figure."""
    invoke, clock = interpreter.invoke, time.perf_counter_ns
    for _ in range(100):
        invoke()
    times = np.empty(invokes)
    for i in range(invokes):
        start = clock()
        invoke()
        times[i] = clock() - start
    return list(times / 1e9)


def throughput(classify, images: np.ndarray, repeats: int) -> list[float]:
    classify(images)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        classify(images)
        rates.append(len(images) / (time.perf_counter() - start))
    return rates


def predict_startup(repeats: int, model: Path, image: Path) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "mnist_keras.predict", str(image), f"--model={model}"],
                                capture_output=True, text=True, cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        if result.returncode != 0:
            raise SystemExit(f"predict failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
        times.append(time.perf_counter() - start)
    return times


APP_MODELS = ("mnist_camera.tflite", "mnist_rgb.tflite")  # RGB input: timed by camera_rows


def camera_rows(export_dir: Path, digit: np.ndarray, invokes: int, repeats: int) -> list[tuple]:
    """The camera model: one invoke on one thread, its preprocessing alone, the CNN alone and the
    28x28 int8 model, timed in turn each repeat (interleaved); sizes, XNNPACK partitions, the aims."""
    from ai_edge_litert.interpreter import Interpreter

    from mnist_keras.exporting import camera_model
    from mnist_keras.inference import litert

    camera, rgb, int8 = export_dir / APP_MODELS[0], export_dir / APP_MODELS[1], export_dir / "mnist_int8.tflite"
    if not camera.exists() or not rgb.exists():
        return [("inference", f"{camera.name}: not exported", "", "")]
    with tempfile.TemporaryDirectory() as folder:
        prepare = Path(folder) / "preprocessing.tflite"
        prepare.write_bytes(camera_model.convert_preprocessing())
        page = camera_model.render(digit[None])
        inputs = [(camera, page), (prepare, page), (rgb, np.repeat(digit[None, ..., None], 3, -1))]
        if int8.exists():
            inputs.append((int8, digit[None, ..., None]))
        interpreters, nodes = {}, {}
        for path, image in inputs:
            with litert.quiet_stderr():
                interpreter = Interpreter(model_path=str(path), num_threads=1)
                interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
            interpreters[path] = interpreter
            nodes[path] = [op["op_name"] for op in interpreter._get_ops_details()]
        medians = {path: [] for path in interpreters}
        for _ in range(repeats):
            for path, interpreter in interpreters.items():
                medians[path].append(float(np.median(time_invokes(interpreter, invokes))) * 1e6)
    whole, share, cnn = (float(np.median(medians[p])) for p in (camera, prepare, rgb))
    size = f"{camera_model.SIZE}x{camera_model.SIZE}"
    partitions = nodes[prepare].count("DELEGATE")
    rows = [
        ("inference", f"{camera.name}: {size} RGB, preprocessing + CNN, 1 thread, median of {invokes} invokes",
         median_spread(medians[camera], 1, " us"), f"{camera.stat().st_size / 1e6:.2f} MB (aim <= 0.6 MB)"),
        ("inference", f"  its preprocessing alone (float32 .tflite: {len(nodes[prepare]) - partitions} ops, "
                      f"{partitions} XNNPACK partitions)", median_spread(medians[prepare], 1, " us"),
         f"{share / whole:.0%} of the camera model"),
        ("inference", f"  the CNN alone ({rgb.name}, 28x28 RGB)", median_spread(medians[rgb], 1, " us"),
         f"preprocessing = {share / cnn:.1f}x the CNN; {rgb.stat().st_size / 1e6:.2f} MB"),
        ("ratio", "camera preprocessing / the CNN alone (aim <= 1.0)", f"{share:.1f} / {cnn:.1f} us",
         f"= {share / cnn:.2f}"),
    ]
    if int8 in medians:
        alone = float(np.median(medians[int8]))
        rows += [("inference", f"  {int8.name}, the same repeats", median_spread(medians[int8], 1, " us"), ""),
                 ("ratio", f"camera model / {int8.name} (aim <= 2.0)", f"{whole:.1f} / {alone:.1f} us",
                  f"= {whole / alone:.2f}")]
    return rows


def ratio_rows(cpu: float, wall: float, floor: float, precision: str, torch_run: TorchEpochs) -> list[tuple]:
    """The aims as ratios: the epoch against the PyTorch version's, and against its own floor."""
    rows = [("ratio", f"epoch / floor of the chosen precision ({precision}; aim <= 1.6)",
             f"{wall:.2f} s / {floor:.2f} s", f"= {wall / floor:.2f}")]
    if not torch_run.epochs:
        rows.append(("ratio", f"epoch CPU-s / the PyTorch version's: {torch_run.skipped}", "", ""))
        return rows
    torch_cpu = float(np.median([e[1] for e in torch_run.epochs]))
    torch_wall = float(np.median([e[0] for e in torch_run.epochs]))
    rows += [("torch", f"PyTorch version (torch {torch_run.version}), an epoch of the same images, alternated",
              median_spread([e[0] for e in torch_run.epochs], 1, " s") + " wall",
              median_spread([e[1] for e in torch_run.epochs], 1, " CPU-s")),
             ("ratio", "epoch CPU-s / the PyTorch version's (aim <= 0.45)",
              f"{cpu:.1f} / {torch_cpu:.1f} CPU-s",
              f"= {cpu / torch_cpu:.2f}" if torch_cpu else "(PyTorch's epoch under 0.05 CPU-s)"),
             ("ratio", "epoch wall / the PyTorch version's", f"{wall:.1f} / {torch_wall:.1f} s",
              f"= {wall / torch_wall:.2f}" if torch_wall else "")]
    return rows


def cpu_name() -> str:
    from mnist_keras.training.autotune import cpu_description

    return cpu_description()["cpu"]


def resolve(path: str) -> Path:
    """A flag's path, relative to the repository unless absolute."""
    return Path(path) if Path(path).is_absolute() else REPO / path


def check_inputs() -> tuple[Path, Path, Path, list[Path]]:
    """The trained and exported models the rows need, checked before minutes of training runs."""
    from mnist_keras.errors import InputError
    from mnist_keras.inference import classifiers, predict
    from mnist_keras.serving.model_manager import latest_version
    from mnist_keras.training import keras_file

    model_path = keras_file.check_keras_file(resolve(FLAGS.model))
    _, version = latest_version(resolve(FLAGS.saved_model))
    classifiers.check_saved_model_dir(version)
    export_dir = resolve(FLAGS.export_dir)
    tflites = sorted(export_dir.glob("mnist_*.tflite"))
    default = export_dir / Path(predict.DEFAULT_MODEL).name
    if default not in tflites:
        raise InputError(f"{default}: no such model; run mnist-export first")
    return model_path, version, export_dir, tflites


def main(argv: list[str]) -> None:
    del argv  # unused
    model_path, version, export_dir, tflites = check_inputs()
    logging.set_verbosity(logging.WARNING)  # the TFLite converter logs each step at INFO
    repeats = 1 if FLAGS.quick else FLAGS.repeats
    train_examples = 640 if FLAGS.quick else FLAGS.train_examples
    invokes = 200 if FLAGS.quick else FLAGS.invokes
    images_per_epoch = train_examples or TRAIN_IMAGES

    import keras
    import tensorflow as tf

    from mnist_keras.data import datasets
    from mnist_keras.data.datasets import scale_images
    from mnist_keras.inference import litert, predict
    from mnist_keras.inference.predictor import load_predictor
    from mnist_keras.training import keras_file

    flags_text = " ".join(FLAGS.train_flags) or "defaults"
    print(f"Machine: {os.cpu_count()} CPU cores ({cpu_name()}), no GPU visible"
          if not tf.config.list_physical_devices("GPU") else f"Machine: {os.cpu_count()} CPU cores, GPU")
    print(f"Versions: Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"Medians of {repeats} measurement(s), min-max in brackets.\n")

    rows = []
    f32, bf16 = matmul_flops_per_second("float32"), matmul_flops_per_second("bfloat16")
    epoch_flops = flops_per_training_image() * images_per_epoch
    torch_run = torch_epochs_runner(train_examples, FLAGS.torch_pipeline, FLAGS.torch_python)
    epochs, precision, batch = training_epochs(repeats, train_examples, FLAGS.train_flags,
                                               torch_run.next if torch_run.ready else None)
    walls, cpus = [e[0] for e in epochs], [e[1] for e in epochs]
    wall = float(np.median(walls))
    applies = {"float32": "bfloat16" not in precision, "bfloat16": "bfloat16" in precision}
    rows += [
        ("training", f"epoch of {images_per_epoch} images, batch {batch}, {precision} ({flags_text})",
         median_spread(walls, 1, " s") + " wall", median_spread(cpus, 1, " CPU-s")),
        ("training", "images per second", f"{images_per_epoch / wall:,.0f}", ""),
        ("floor", f"{epoch_flops / 1e12:.2f} TFLOP per epoch at float32 matmul speed "
                  f"({f32 / 1e9:.0f} GFLOP/s)" + (" <- this run's arithmetic" if applies["float32"] else ""),
         f"{epoch_flops / f32:.2f} s", f"epoch = {wall / (epoch_flops / f32):.1f}x floor"),
        ("floor", f"same at bfloat16 matmul speed ({bf16 / 1e9:.0f} GFLOP/s)"
                  + (" <- this run's arithmetic" if applies["bfloat16"] else ""),
         f"{epoch_flops / bf16:.2f} s", f"epoch = {wall / (epoch_flops / bf16):.1f}x floor"),
    ]

    rows += ratio_rows(np.median(cpus), wall, epoch_flops / (bf16 if "bfloat16" in precision else f32),
                       precision, torch_run)

    mnist = datasets.load()
    image = mnist.x_test[0]
    batch = mnist.x_test[:1000]
    latency = {}
    for path in (p for p in tflites if p.name not in APP_MODELS):
        runs = [np.array(tflite_latency(path, image, invokes)) * 1e6 for _ in range(repeats)]
        latency[path.name] = float(np.median([np.median(r) for r in runs]))
        rows.append(("inference", f"{path.name}: one image, 1 thread, median of {invokes} invokes",
                     median_spread([float(np.median(r)) for r in runs], 1, " us"),
                     f"p90 {np.percentile(np.concatenate(runs), 90):.1f} us"))
        interpreter = litert.load(path)
        rates = throughput(lambda x, run=interpreter: litert.predict(run, x, batch_size=1000), batch, repeats)
        rows.append(("inference", f"{path.name}: batches of 1000, all cores",
                     median_spread(rates, 0, " img/s"), ""))
    rows += camera_rows(export_dir, image, invokes, repeats)
    fixed = [seconds * 1e6 for seconds in invoke_fixed_cost(invokes, repeats)]
    rows.append(("inference", "a one-ReLU int8 model: the fixed cost of an invoke (LiteRT + Python)",
                 median_spread(fixed, 1, " us"), ""))
    size, matmul_batch = (256, 64) if FLAGS.quick else (1024, 256)
    int8_speed = int8_matmul_multiply_adds_per_second(size, matmul_batch)
    int8_floor = multiply_adds_per_image() / int8_speed * 1e6
    measured = latency.get("mnist_int8.tflite")
    rows.append(("floor", f"{multiply_adds_per_image() / 1e6:.2f} M multiply-adds per image at LiteRT's int8 "
                          f"matmul speed ({int8_speed / 1e9:.0f} GMAC/s, 1 thread)",
                 f"{int8_floor:.1f} us", f"int8 .tflite = {measured / int8_floor:.1f}x floor" if measured else ""))
    model = keras_file.load_keras(model_path)
    scaled = scale_images(batch)
    rows.append(("inference", "Keras model: batches of 1000 (predict_on_batch)",
                 median_spread(throughput(lambda x: model.predict_on_batch(x), scaled, repeats), 0, " img/s"), ""))
    serve = load_predictor(version, require_score=False).serve  # the signature, as the servers call it
    rows.append(("inference", f"SavedModel {version.name}: batches of 1000 (serving signature)",
                 median_spread(throughput(serve, scaled, repeats), 0, " img/s"), ""))

    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.png"
        from PIL import Image

        Image.fromarray(255 - image).save(one)
        startup = predict_startup(repeats, export_dir / Path(predict.DEFAULT_MODEL).name, one)
    rows.append(("start-up", "python -m mnist_keras.predict one.png (int8 .tflite)",
                 median_spread(startup, 2, " s"), ""))

    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    cli.run(main)  # a missing or bad model: one line, exit status 2
