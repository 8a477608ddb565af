"""TF Serving's gRPC API on tensorflow-serving-api's generated stubs: Predict, metadata, status.

A client written for tensorflow_model_server (PredictionServiceStub, ModelServiceStub)
works unchanged. Errors carry TF Serving's status codes: an unknown model or version is
NOT_FOUND; a wrong signature, input name, shape or dtype is INVALID_ARGUMENT.
"""

from __future__ import annotations

import math
from concurrent import futures
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_keras.data.datasets import IMAGE_SHAPE
from mnist_keras.errors import InputError
from mnist_keras.serving.batching import QueueFull
from mnist_keras.serving.model_manager import ModelManager, NotFound
from mnist_keras.serving.predict_format import MAX_INSTANCES, SIGNATURE, RequestError, to_images

if TYPE_CHECKING:
    from mnist_keras.serving.config import ServerOptions
    from mnist_keras.serving.prometheus import Metrics

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # answers (probabilities of 1,024 images are 40 KB)
MESSAGE_SLACK_BYTES = 64 * 1024  # model_spec, names, the TensorProto's own fields
MAX_CONCURRENT_STREAMS = 100  # per connection, as most HTTP/2 servers
DT_FLOAT, DT_INT64 = 1, 9  # tensorflow.DataType
_NUMPY_DTYPES = {DT_FLOAT: np.float32, DT_INT64: np.int64}


class InvalidArgument(ValueError):
    pass


def tensor_to_array(tensor: Any, max_instances: int | None = None) -> np.ndarray:
    """A float TensorProto -> numpy, without TensorFlow; its declared cost is checked before any allocation.

    With max_instances, the tensor is a request's images: the dtype, each dimension (against
    [N <= max_instances, 28, 28, 1]) and the number of bytes or values it carries are checked
    first, so a 49-byte request declaring a million images costs nothing. Without, any shape
    of at most MAX_INSTANCES images' worth of values (an answer's outputs).
    """
    from tensorflow.core.framework import types_pb2

    if tensor.dtype != DT_FLOAT:
        if tensor.dtype in types_pb2.DataType.values() and tensor.dtype:
            name = types_pb2.DataType.Name(tensor.dtype).removeprefix("DT_").lower()
        else:
            name = f"an invalid dtype ({tensor.dtype})"
        raise InvalidArgument(f"Expects arg[0] to be float but {name} is provided")
    if max_instances is not None:
        shape = _checked_shape(tensor.tensor_shape, max_instances)
    else:
        shape = [d.size for d in tensor.tensor_shape.dim]
        if any(size < 0 for size in shape) or math.prod(shape) > MAX_INSTANCES * 28 * 28:
            raise InvalidArgument(f"tensor shape {shape}: negative, or more than {MAX_INSTANCES} images' values")
    count = math.prod(shape)  # at most max_instances * 784 now
    if tensor.tensor_content:
        if len(tensor.tensor_content) != 4 * count:
            raise InvalidArgument(f"images: tensor_content of {len(tensor.tensor_content)} bytes for shape "
                                  f"{shape}, which takes {4 * count} bytes of float32")
        values = np.frombuffer(tensor.tensor_content, np.float32)
    else:
        if len(tensor.float_val) not in (1, count):
            raise InvalidArgument(f"images: {len(tensor.float_val)} values for shape {shape} ({count} values)")
        values = np.asarray(tensor.float_val, np.float32)
        if len(values) == 1 and count > 1:
            values = np.full(count, values[0], np.float32)  # TensorProto's single repeated value
    return values.reshape(shape)


def _checked_shape(proto: Any, max_instances: int) -> list[int]:
    """The declared shape, refused unless it is [N, 28, 28, 1] with 1 <= N <= max_instances."""
    shape = [d.size for d in proto.dim]
    if proto.unknown_rank or len(shape) != 4 or shape[1:] != [*IMAGE_SHAPE, 1]:
        described = "of unknown rank" if proto.unknown_rank else str(shape)
        raise InvalidArgument(f"images: shape {described}, expected [N, 28, 28, 1] "
                              "(N images of 28x28 pixels, 1 channel)")
    if shape[0] < 1:
        raise InvalidArgument(f"images: shape {shape}: no images")
    if shape[0] > max_instances:
        raise InvalidArgument(f"{shape[0]} images in one request; at most {max_instances}")
    return shape


def array_to_tensor(array: np.ndarray) -> Any:
    """numpy -> a TensorProto (float32 or int64), as TF Serving answers."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    dtype = DT_INT64 if array.dtype == np.int64 else DT_FLOAT
    array = np.ascontiguousarray(array, _NUMPY_DTYPES[dtype])
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s)
                                                   for s in array.shape])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=array.tobytes())


def signature_def_map(signatures: Any) -> Any:
    """A version's signatures (LoadedVersion.signatures) as GetModelMetadata returns them (SignatureDefMap)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in signatures.items():
        result.signature_def[name].CopyFrom(signature)
    return result


def _version(spec) -> int | None:
    if spec.HasField("version"):
        return spec.version.value
    if spec.version_label:
        raise InvalidArgument(f"Unrecognized servable version label: {spec.version_label}")
    return None


class Handlers:
    """The answers to TF Serving's gRPC calls over the manager's versions, in its status codes."""

    def __init__(self, manager: ModelManager, metrics: Metrics | None = None,
                 max_instances: int = MAX_INSTANCES) -> None:
        self.manager, self.metrics, self.max_instances = manager, metrics, max_instances

    def resolve(self, spec: Any, context: Any) -> Any:
        """The version the model_spec names; NOT_FOUND or INVALID_ARGUMENT when there is none, or a bad signature."""
        import grpc

        try:
            loaded = self.manager.resolve(spec.name, _version(spec))
        except NotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))
        except InvalidArgument as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        if spec.signature_name not in ("", SIGNATURE):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f'Serving signature key "{spec.signature_name}" not found.')
        return loaded

    def predict(self, request: Any, context: Any) -> Any:
        import grpc
        from tensorflow_serving.apis import predict_pb2

        loaded = self.resolve(request.model_spec, context)
        wanted = _wanted_outputs(request, loaded, context)
        observe = self.metrics.observe(self.manager.name, loaded.version, "grpc") if self.metrics else _nothing()
        with observe:
            try:
                images = to_images(tensor_to_array(request.inputs["images"], self.max_instances), "images")
                outputs = loaded.run(images)
            except (InvalidArgument, RequestError) as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            except QueueFull as e:
                context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.manager.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = SIGNATURE
        for name in wanted:
            response.outputs[name].CopyFrom(array_to_tensor(outputs[name]))
        return response

    def metadata(self, request: Any, context: Any) -> Any:
        import grpc
        from tensorflow_serving.apis import get_model_metadata_pb2

        loaded = self.resolve(request.model_spec, context)
        if not request.metadata_field:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.manager.name
        response.model_spec.version.value = loaded.version
        response.metadata["signature_def"].Pack(signature_def_map(loaded.signatures))
        return response

    def status(self, request: Any, context: Any) -> Any:
        import grpc
        from tensorflow_serving.apis import get_model_status_pb2, status_pb2

        try:
            statuses = self.manager.statuses(request.model_spec.name, _version(request.model_spec))
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


def _wanted_outputs(request: Any, loaded: Any, context: Any) -> list[str]:
    """The request's output_filter (else every output), once its one input is known to be images."""
    import grpc

    unknown = sorted(set(request.inputs) - {"images"})
    if unknown or "images" not in request.inputs:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f"input tensor alias not found in signature: {', '.join(unknown) or '(none)'}. "
                      "Inputs expected to be in the set {images}.")
    known = sorted(loaded.outputs)  # classes, probabilities (and digit_score)
    wanted = list(request.output_filter) or known
    extra = sorted(set(wanted) - set(known))
    if extra:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f"output tensor alias not found in signature: {', '.join(extra)} "
                      f"Outputs expected to be in the set {{{','.join(known)}}}.")
    return wanted


def make_servicers(manager: ModelManager, metrics: Metrics | None = None,
                   max_instances: int = MAX_INSTANCES) -> tuple[Any, Any]:
    """(PredictionService, ModelService) servicers over the manager's versions; the generated base
    classes answer UNIMPLEMENTED for the calls this server does not have (Classify, Regress, ...)."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    handlers = Handlers(manager, metrics, max_instances)

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return handlers.predict(request, context)

        def GetModelMetadata(self, request, context):
            return handlers.metadata(request, context)

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            return handlers.status(request, context)

    return PredictionService(), ModelService()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def channel_options(max_instances: int, channel_arguments: str = "") -> list[tuple[str, int | str]]:
    """gRPC server options: a message holds at most max_instances images, 100 streams a connection;
    then --grpc_channel_arguments (TF Serving's "key=value,key=value"), which override them."""
    message_bytes = max_instances * 28 * 28 * 5 + MESSAGE_SLACK_BYTES  # 4 bytes a float, 5 if not packed
    options: dict[str, int | str] = {"grpc.max_receive_message_length": message_bytes,
                                     "grpc.max_send_message_length": max(message_bytes, MAX_MESSAGE_BYTES),
                                     "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
                                     "grpc.so_reuseport": 0}
    for argument in filter(None, (a.strip() for a in channel_arguments.split(","))):
        key, equals, value = argument.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise InputError(f"--grpc_channel_arguments: {argument!r} is not key=value "
                             "(e.g. grpc.max_concurrent_streams=10)")
        value = value.strip()
        options[key.strip()] = int(value) if value.lstrip("-").isdigit() else value
    return list(options.items())


def start_grpc_server(manager: ModelManager, options: ServerOptions, metrics: Metrics | None = None,
                      ) -> tuple[Any, int]:
    """Starts serving on options.host:options.port (0: any free port); returns (server, the port taken).

    Past options.grpc_max_concurrent_rpcs calls in progress or queued for a thread, gRPC answers
    RESOURCE_EXHAUSTED.
    """
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    pool = futures.ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc")
    server = grpc.server(pool, options=channel_options(options.max_instances, options.grpc_channel_arguments),
                         maximum_concurrent_rpcs=options.grpc_max_concurrent_rpcs)
    prediction, model = make_servicers(manager, metrics, options.max_instances)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model, server)
    host, port = options.host, options.port
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        taken = server.add_insecure_port(address)
    except RuntimeError:
        taken = 0
    if not taken:
        raise InputError(f"{address}: cannot listen for gRPC (port in use?)")
    server.start()
    return server, taken
