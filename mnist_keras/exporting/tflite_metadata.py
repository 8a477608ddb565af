"""Standard TFLite metadata (the TFLITE_METADATA buffer and its packed label file), written
with MediaPipe's official metadata writers and read back with its generated schema.

Android Studio's ML Model Binding, MediaPipe Tasks and the TFLite Task Library read a
model's labels, input normalization and name from this metadata, so a file that carries it
can be used as it is. What `read_metadata` reads back also fills the JSON beside each file.
"""

from __future__ import annotations

import io
import struct
import sys
import types
import zipfile

from mnist_keras.data.datasets import NUM_CLASSES
from mnist_keras.errors import InputError

AUTHOR = "mnist-keras"
# The project's licence (LICENSE, pyproject.toml) and the training data's, which the weights come from.
LICENSE = "Apache-2.0 (mnist-keras); trained on MNIST (LeCun, Cortes, Burges), CC BY-SA 3.0"
LABELS_FILE = "labels.txt"
LABELS = [str(c) for c in range(NUM_CLASSES)]
# no_digit.py's second head: [no digit, digit] whose top category is the decision
CHECK_NAME, CHECK_FILE, CHECK_LABELS = "digit_check", "digit_check.txt", ["no digit", "digit"]
CHECK_DESCRIPTION = ("whether the picture holds a digit: [no digit, digit], the larger is the decision "
                     "(digit score >= 0.5; the threshold chosen on validation data is folded in)")
# Every field this project writes is in the schema's first version; later ones are refused.
MIN_PARSER_VERSION = "1.0.0"
_SHIM = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"


def _minimum_parser_version(metadata_buffer: bytes) -> str:
    """What MediaPipe's native _pywrap_metadata_version (absent from its wheel) computes,
    for the fields this project writes: it refuses metadata that uses later ones."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    model = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(metadata_buffer, 0))
    for subgraph in model.subgraphMetadata or []:
        later = [name for name, value in [("input process units", subgraph.inputProcessUnits),
                                          ("tensor groups", subgraph.inputTensorGroups),
                                          ("output tensor groups", subgraph.outputTensorGroups),
                                          ("custom metadata", subgraph.customMetadata)] if value]
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            if tensor.content and tensor.content.contentPropertiesType == fb.ContentProperties.AudioProperties:
                later.append("audio properties")
            for file in tensor.associatedFiles or []:
                if file.type not in (fb.AssociatedFileType.TENSOR_AXIS_LABELS, fb.AssociatedFileType.DESCRIPTIONS):
                    later.append("associated file type")
                if file.version:
                    later.append("associated file version")
        if later:
            raise ValueError(f"metadata uses fields after schema {MIN_PARSER_VERSION}: {', '.join(later)}")
    return MIN_PARSER_VERSION


def _writers():
    """MediaPipe's metadata_writer module, with the minimum-version shim its wheel lacks."""
    try:
        __import__(_SHIM)
    except ImportError:  # the wheel has no mediapipe.tasks.cc: the shim and its parents
        parts = _SHIM.split(".")
        for i in range(3, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        sys.modules[_SHIM].GetMinimumMetadataParserVersion = _minimum_parser_version
        for i in range(4, len(parts) + 1):
            setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[".".join(parts[:i])])
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, metadata_writer

    return metadata_writer, metadata_info


def _output_shapes(model: bytes) -> list[tuple[int, ...]]:
    """The output tensors' shapes, in the order the metadata lists them."""
    from mediapipe.tasks.metadata import schema_py_generated as schema

    graph = schema.Model.GetRootAsModel(model, 0).Subgraphs(0)
    return [tuple(int(n) for n in graph.Tensors(graph.Outputs(i)).ShapeAsNumpy())
            for i in range(graph.OutputsLength())]


def normalization(input_type: str) -> tuple[float, float]:
    """(mean, std) with (pixel - mean) / std the model's input: [0, 1] for float, raw uint8."""
    return (0.0, 255.0) if input_type == "float32" else (0.0, 1.0)


def add_metadata(model: bytes, name: str, description: str, version: str, pixels: str,
                 color: str = "RGB") -> bytes:
    """The model with standard metadata: general info, image input, digit labels."""
    writer_module, info = _writers()
    fb = writer_module.metadata_fb
    if len(model) < 8 or model[4:8] != b"TFL3":  # the TFLite flatbuffer's file identifier
        raise InputError(f"{name}: cannot write TFLite metadata: not a TFLite model")
    try:
        writer = writer_module.MetadataWriter.create(bytearray(model))
        input_type = "float32" if writer._input_tensor_type(0) == 0 else "uint8"  # TensorType.FLOAT32
        mean, std = normalization(input_type)
        writer._general_md = info.GeneralMd(name=name, version=version, description=description,
                                            author=AUTHOR, licenses=LICENSE)
        writer.add_image_input([mean], [std], color_space_type=getattr(fb.ColorSpaceType, color),
                               name="image", description=pixels)
        for shape in _output_shapes(model):  # the digits, and no_digit.py's check where the model has it
            if shape[-1] == NUM_CLASSES:
                writer.add_classification_output(writer_module.Labels().add(LABELS), name="probabilities",
                                                 description="probability of each digit 0-9 (softmax)")
            else:
                writer.add_classification_output(
                    writer_module.Labels().add(CHECK_LABELS, exported_filename=CHECK_FILE), name=CHECK_NAME,
                    description=CHECK_DESCRIPTION)
        with_metadata, _ = writer.populate()
        del writer  # its temporary folder goes now, not at interpreter exit
    except (ValueError, TypeError, AttributeError, IndexError, struct.error) as e:
        raise InputError(f"{name}: cannot write TFLite metadata: {e}") from None
    return bytes(with_metadata)


def embed(model: bytes, file: str, description: str, pixels: str, provenance: dict,
          color: str = "GRAYSCALE") -> bytes:
    """export's one call: the model with its metadata, checked by reading it back."""
    version = (provenance.get("source_model_sha256") or "unversioned")[:12]
    written = add_metadata(model, f"MNIST digit classifier ({file})",
                           f"Reads one handwritten digit. {description}.", version, pixels, color)
    found = read_metadata(written, file)
    if found["output"]["labels"] != LABELS or found["version"] != version:
        raise InputError(f"{file}: the TFLite metadata read back differs from what was written")
    return written


def read_metadata(model: bytes, name: str = "model") -> dict:
    """The metadata a reader of the schema sees: general info, input, labels; or one line why not."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.metadata import schema_py_generated as schema

    try:
        tflite = schema.Model.GetRootAsModel(model, 0)
        buffers = [tflite.Metadata(i) for i in range(tflite.MetadataLength())]
        found = [m.Buffer() for m in buffers if m.Name() == b"TFLITE_METADATA"]
        if not found:
            raise InputError(f"{name}: no TFLITE_METADATA in the model")
        data = tflite.Buffers(found[0]).DataAsNumpy().tobytes()
        if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0):
            raise InputError(f"{name}: TFLITE_METADATA is not a metadata flatbuffer")
        meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(data, 0))
        subgraph = meta.subgraphMetadata[0]
        image, output = subgraph.inputTensorMetadata[0], subgraph.outputTensorMetadata[0]
        outputs = subgraph.outputTensorMetadata
        if len(outputs) > 1 and output.name != b"probabilities":
            output = next((o for o in outputs if o.name == b"probabilities"), output)
        checks = [o for o in outputs if o.name == CHECK_NAME.encode()]
        units = [u.options for u in image.processUnits or []
                 if u.optionsType == fb.ProcessUnitOptions.NormalizationOptions]
        label_files = [f.name.decode() for f in output.associatedFiles or []
                       if f.type == fb.AssociatedFileType.TENSOR_AXIS_LABELS]
        check_files = [f.name.decode() for o in checks for f in o.associatedFiles or []
                       if f.type == fb.AssociatedFileType.TENSOR_AXIS_LABELS]
        with zipfile.ZipFile(io.BytesIO(model)) as packed:
            labels = packed.read(label_files[0]).decode().split() if label_files else []
            check_labels = packed.read(check_files[0]).decode().splitlines() if check_files else []
    except InputError:
        raise
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error, zipfile.BadZipFile) as e:
        raise InputError(f"{name}: cannot read TFLite metadata: {type(e).__name__}: {e}") from None
    text = lambda value: value.decode() if isinstance(value, bytes) else value  # noqa: E731
    colors = {v: k for k, v in vars(fb.ColorSpaceType).items() if not k.startswith("_")}
    norm = {"mean": [float(v) for v in units[0].mean], "std": [float(v) for v in units[0].std]} if units else None
    return {
        "name": text(meta.name), "description": text(meta.description), "version": text(meta.version),
        "author": text(meta.author), "license": text(meta.license),
        "min_parser_version": text(meta.minParserVersion),
        "input": {"name": text(image.name), "description": text(image.description),
                  "color_space": colors.get(image.content.contentProperties.colorSpace),
                  "normalization": norm},
        "output": {"name": text(output.name), "description": text(output.description),
                   "labels_file": label_files[0] if label_files else None, "labels": labels},
        **({"no_digit_output": {"name": CHECK_NAME, "description": text(checks[0].description),
                                "labels_file": check_files[0] if check_files else None,
                                "labels": check_labels}} if checks else {}),
    }
