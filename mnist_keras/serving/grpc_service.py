"""TF Serving's gRPC API on tensorflow-serving-api's generated stubs: Predict, metadata, status.

A client written for tensorflow_model_server (PredictionServiceStub, ModelServiceStub)
works unchanged. Errors carry TF Serving's status codes: an unknown model or version is
NOT_FOUND; a wrong signature, input name, shape or dtype is INVALID_ARGUMENT.
"""

from __future__ import annotations

import functools
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_keras.errors import InputError
from mnist_keras.serving.batching import QueueFull
from mnist_keras.serving.model_manager import ModelManager, NotFound
from mnist_keras.serving.predict_format import SIGNATURE, RequestError, to_images

if TYPE_CHECKING:
    from mnist_keras.serving.prometheus import Metrics

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DT_FLOAT, DT_INT64 = 1, 9  # tensorflow.DataType
_NUMPY_DTYPES = {DT_FLOAT: np.float32, DT_INT64: np.int64}


class InvalidArgument(ValueError):
    pass


def tensor_to_array(tensor: Any) -> np.ndarray:
    """A float TensorProto -> numpy, without TensorFlow (tensor_content or float_val)."""
    from tensorflow.core.framework import types_pb2

    if tensor.dtype != DT_FLOAT:
        name = types_pb2.DataType.Name(tensor.dtype).removeprefix("DT_").lower() if tensor.dtype else "invalid"
        raise InvalidArgument(f"Expects arg[0] to be float but {name} is provided")
    shape = [d.size for d in tensor.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    if tensor.tensor_content:
        values = np.frombuffer(tensor.tensor_content, np.float32)
    else:
        values = np.asarray(tensor.float_val, np.float32)
        if len(values) == 1 and count > 1:
            values = np.full(count, values[0], np.float32)  # TensorProto's single repeated value
    if values.size != count:
        raise InvalidArgument(f"images: {values.size} values for shape {shape}")
    return values.reshape(shape)


def array_to_tensor(array: np.ndarray) -> Any:
    """numpy -> a TensorProto (float32 or int64), as TF Serving answers."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    dtype = DT_INT64 if array.dtype == np.int64 else DT_FLOAT
    array = np.ascontiguousarray(array, _NUMPY_DTYPES[dtype])
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s)
                                                   for s in array.shape])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=array.tobytes())


@functools.lru_cache(maxsize=16)
def signature_def_map(path: Path) -> Any:
    """The SavedModel's signatures as GetModelMetadata returns them (SignatureDefMap)."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in proto.meta_graphs[0].signature_def.items():
        result.signature_def[name].CopyFrom(signature)
    return result


def _version(spec) -> int | None:
    if spec.HasField("version"):
        return spec.version.value
    if spec.version_label:
        raise InvalidArgument(f"Unrecognized servable version label: {spec.version_label}")
    return None


def make_servicers(manager: ModelManager, metrics: Metrics | None = None, max_instances: int = 1024) -> tuple[Any, Any]:
    """(PredictionService, ModelService) servicers over the manager's versions."""
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
        status_pb2,
    )

    def resolve(spec, context):
        try:
            return manager.resolve(spec.name, _version(spec))
        except NotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except InvalidArgument as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def check_signature(spec, context):
        if spec.signature_name not in ("", SIGNATURE):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f'Serving signature key "{spec.signature_name}" not found.')

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            loaded = resolve(request.model_spec, context)
            check_signature(request.model_spec, context)
            unknown = sorted(set(request.inputs) - {"images"})
            if unknown or "images" not in request.inputs:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input tensor alias not found in signature: {', '.join(unknown) or '(none)'}. "
                              "Inputs expected to be in the set {images}.")
            known = sorted(loaded.signature.structured_outputs)  # classes, probabilities (and digit_score)
            wanted = list(request.output_filter) or known
            extra = sorted(set(wanted) - set(known))
            if extra:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"output tensor alias not found in signature: {', '.join(extra)} "
                              f"Outputs expected to be in the set {{{','.join(known)}}}.")
            observe = metrics.observe(manager.name, loaded.version, "grpc") if metrics else _nothing()
            with observe:
                try:
                    images = to_images(tensor_to_array(request.inputs["images"]), "images")
                    if len(images) > max_instances:
                        raise InvalidArgument(f"{len(images)} images in one request; at most {max_instances}")
                    outputs = loaded.run(images)
                except (InvalidArgument, RequestError) as e:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                except QueueFull as e:
                    context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
            response = predict_pb2.PredictResponse()
            response.model_spec.name = manager.name
            response.model_spec.version.value = loaded.version
            response.model_spec.signature_name = SIGNATURE
            for name in wanted:
                response.outputs[name].CopyFrom(array_to_tensor(outputs[name]))
            return response

        def GetModelMetadata(self, request, context):
            loaded = resolve(request.model_spec, context)
            check_signature(request.model_spec, context)
            if not request.metadata_field:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              "GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = manager.name
            response.model_spec.version.value = loaded.version
            response.metadata["signature_def"].Pack(signature_def_map(loaded.path))
            return response

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            try:
                statuses = manager.statuses(request.model_spec.name, _version(request.model_spec))
            except NotFound as e:
                context.abort(grpc.StatusCode.NOT_FOUND, str(e))
            except InvalidArgument as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            response = get_model_status_pb2.GetModelStatusResponse()
            for status in statuses:
                response.model_version_status.add(
                    version=status.version,
                    state=get_model_status_pb2.ModelVersionStatus.State.Value(status.state),
                    status=status_pb2.StatusProto(error_code=status.error_code, error_message=status.error_message))
            return response

    return PredictionService(), ModelService()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def start_grpc_server(manager: ModelManager, host: str, port: int, metrics: Metrics | None = None,
                      max_instances: int = 1024, threads: int = 16) -> tuple[Any, int]:
    """Starts serving on host:port (0: any free port); returns (server, the port taken)."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                  ("grpc.so_reuseport", 0)])
    prediction, model = make_servicers(manager, metrics, max_instances)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        taken = server.add_insecure_port(address)
    except RuntimeError:
        taken = 0
    if not taken:
        raise InputError(f"{address}: cannot listen for gRPC (port in use?)")
    server.start()
    return server, taken
