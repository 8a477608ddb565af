"""A SavedModel from someone else is scanned, and refused before any of it runs, if its graph
reaches files, the network or processes (inference/saved_model_scan.py); ours still passes."""

from __future__ import annotations

import ast
import importlib.util
import shutil
from pathlib import Path

import pytest

from mnist_keras.errors import InputError
from mnist_keras.inference import classifiers, saved_model_scan


def _hostile_saved_model(folder: Path, side_effect) -> Path:
    """A SavedModel that meets the serving contract (images in; probabilities, classes out) and
    calls side_effect() in its serving signature: what a hostile file would look like."""
    import tensorflow as tf

    class Hostile(tf.Module):
        def __init__(self):
            super().__init__()
            self.weights = tf.Variable(tf.zeros([28 * 28, 10]))  # so the SavedModel has a saver, as ours does

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
        def serve(self, images):
            with tf.control_dependencies([side_effect(images)]):
                logits = tf.matmul(tf.reshape(images, [-1, 28 * 28]), self.weights)
            return {"probabilities": tf.nn.softmax(logits), "classes": tf.argmax(logits, axis=1)}

    module = Hostile()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Two hostile SavedModels, and the file each would write if it ran: {kind: (folder, target)}."""
    import tensorflow as tf

    out = tmp_path_factory.mktemp("hostile")
    write_target, save_target = out / "pwned", out / "pwned-checkpoint"
    models = {
        "write_file": (_hostile_saved_model(out / "write_file", lambda images: tf.io.write_file(
            str(write_target), "written by a model")), write_target),
        "save_in_signature": (_hostile_saved_model(out / "save_in_signature", lambda images: tf.raw_ops.SaveV2(
            prefix=str(save_target), tensor_names=["images"], shape_and_slices=[""], tensors=[images])),
            save_target),
    }
    for _, target in models.values():
        assert not target.exists()
    return models


def test_our_denylist_holds_saved_model_cli_scans():
    """saved_model_cli scan's _OP_DENYLIST (read from TensorFlow's source, not imported: importing the
    tool defines its absl flags) is all in ours."""
    source = Path(importlib.util.find_spec("tensorflow.python.tools.saved_model_cli").origin).read_text()
    assignment = next(node for node in ast.parse(source).body if isinstance(node, ast.Assign)
                      and getattr(node.targets[0], "id", "") == "_OP_DENYLIST")
    theirs = set(ast.literal_eval(assignment.value.args[0]))
    assert theirs and theirs <= saved_model_scan.DENYLIST, theirs - saved_model_scan.DENYLIST


def test_a_model_writing_a_file_is_refused_by_verify_before_it_runs(hostile, training_run, mnist):
    """verify_artifacts, as mnist-verify calls it (the command's one-line error: tests/exporting/test_export.py)."""
    from mnist_keras.exporting.verify import verify_artifacts

    folder, target = hostile["write_file"]
    with pytest.raises(InputError) as refused:
        verify_artifacts(training_run.model_path, [folder], mnist)
    message = str(refused.value)
    assert message.startswith(f"{folder}: refused: op WriteFile (node ") and "\n" not in message
    assert "in function '__inference_serve" in message and "--trust_model" in message
    assert not target.exists()  # not a single op of it ran


def test_a_checkpoint_op_outside_the_saver_is_refused(hostile):
    folder, target = hostile["save_in_signature"]
    with pytest.raises(InputError, match=r"refused: op SaveV2 \(node '[^']+' in function '__inference_serve"):
        classifiers.load_saved_model(folder)
    assert not target.exists()


def test_serve_refuses_a_hostile_version_before_loading_it(hostile, tmp_path):
    from mnist_keras.serving.model_manager import END, ModelManager, Policy, load_version

    folder, target = hostile["write_file"]
    base = tmp_path / "mnist"
    shutil.copytree(folder, base / "1")
    with pytest.raises(InputError, match="refused: op WriteFile"):
        load_version("mnist", 1, base / "1", warmup=False)
    manager = ModelManager("mnist", base, Policy(poll_seconds=0, warmup=False), log=lambda line: None)
    with pytest.raises(InputError) as refused:
        manager.start()
    assert str(refused.value).startswith(f"{base / '1'}: refused: op WriteFile (node ")  # the path once
    assert manager.statuses("mnist")[0].state == END
    assert not target.exists()


def test_trusting_the_model_runs_it_so_the_scan_is_what_stops_it(hostile):
    """With --trust_model (trust=True) the same file runs, and writes its file: the scan alone held it back."""
    import numpy as np
    import tensorflow as tf

    folder, target = hostile["write_file"]
    signature = classifiers.load_saved_model(folder, trust=True)
    signature(images=tf.constant(np.zeros((1, 28, 28, 1), np.float32)))
    assert target.read_text() == "written by a model"
    target.unlink()


def test_our_export_passes_though_its_saver_saves_and_restores(exported):
    """Our SavedModel has SaveV2, MergeV2Checkpoints and RestoreV2, in the functions its saver_def
    runs: allowed there, and only because saver_def names them."""
    version = exported.serving / "1"
    proto = saved_model_scan.read_saved_model(version)
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for f in graph.library.function for node in f.node_def} | {node.op for node in graph.node}
    assert {"SaveV2", "MergeV2Checkpoints", "RestoreV2"} <= ops
    assert saved_model_scan.findings(proto) == []
    saved_model_scan.check_untrusted(version)
    proto.meta_graphs[0].saver_def.Clear()  # the same functions, no longer the saver's
    assert {f.op for f in saved_model_scan.findings(proto)} == {"SaveV2", "MergeV2Checkpoints", "RestoreV2"}


def test_a_tf1_saver_in_the_graph_itself_passes(tmp_path):
    """A TF1 SavedModel (tf.compat.v1 Saver): its save/restore nodes sit in the graph, not in functions."""
    import tensorflow as tf

    v1 = tf.compat.v1
    folder = tmp_path / "tf1"
    with tf.Graph().as_default(), v1.Session() as session:
        images = v1.placeholder(tf.float32, [None, 28, 28, 1], name="images")
        weights = v1.get_variable("weights", [28 * 28, 10], initializer=v1.zeros_initializer())
        logits = tf.matmul(tf.reshape(images, [-1, 28 * 28]), weights)
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(folder))
        signature = v1.saved_model.predict_signature_def({"images": images}, {"probabilities": tf.nn.softmax(logits)})
        builder.add_meta_graph_and_variables(session, ["serve"], {"serving_default": signature})
        builder.save()
    proto = saved_model_scan.read_saved_model(folder)
    assert {"SaveV2", "RestoreV2"} <= {node.op for node in proto.meta_graphs[0].graph_def.node}
    assert saved_model_scan.findings(proto) == []


def test_a_keras_file_with_code_in_it_is_refused_by_safe_mode(tmp_path):
    """.keras files keep safe_mode: a Lambda layer (Python bytecode in the file) is not loaded."""
    import keras

    from mnist_keras.training import keras_file

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(InputError, match=f"^{path}: cannot load Keras model: .*safe_mode"):
        keras_file.load_keras(path)
