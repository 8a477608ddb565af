"""TF Serving's BatchingParameters and MonitoringConfig messages, which tensorflow-serving-api lacks.

The pip package ships model_server_config_pb2 but not session_bundle_config.proto nor
monitoring_config.proto; these are built from their field numbers in tensorflow/serving
(tensorflow_serving/servables/tensorflow/session_bundle_config.proto, BatchingParameters;
tensorflow_serving/config/monitoring_config.proto) so protobuf's own text_format reads them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mnist_keras.errors import InputError

_BATCHING_FIELDS = [  # (name, number, type): wrappers are google.protobuf.*Value
    ("max_batch_size", 1, ".google.protobuf.Int64Value"),
    ("batch_timeout_micros", 2, ".google.protobuf.Int64Value"),
    ("max_enqueued_batches", 3, ".google.protobuf.Int64Value"),
    ("num_batch_threads", 4, ".google.protobuf.Int64Value"),
    ("thread_pool_name", 5, ".google.protobuf.StringValue"),
]


@functools.cache
def _classes() -> dict:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="mnist_keras_tf_serving_configs.proto",
                                               package="tensorflow.serving", syntax="proto3",
                                               dependency=["google/protobuf/wrappers.proto"])
    batching = proto.message_type.add(name="BatchingParameters")
    for name, number, type_name in _BATCHING_FIELDS:
        batching.field.add(name=name, number=number, type=f.TYPE_MESSAGE, label=f.LABEL_OPTIONAL,
                           type_name=type_name)
    batching.field.add(name="allowed_batch_sizes", number=6, type=f.TYPE_INT64, label=f.LABEL_REPEATED)
    batching.field.add(name="pad_variable_length_inputs", number=7, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=f.TYPE_BOOL, label=f.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=f.TYPE_MESSAGE, label=f.LABEL_OPTIONAL,
                         type_name=".tensorflow.serving.PrometheusConfig")
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in ("BatchingParameters", "MonitoringConfig")}


def batching_parameters() -> Any:
    """An empty tensorflow.serving.BatchingParameters message."""
    return _classes()["BatchingParameters"]()


def monitoring_config() -> Any:
    """An empty tensorflow.serving.MonitoringConfig message."""
    return _classes()["MonitoringConfig"]()


def read_text_proto(path: Path, message: Any, flag: str) -> Any:
    """Parses a TF Serving config file (protobuf text format) into `message`; a bad one is one line."""
    from google.protobuf import text_format

    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"--{flag}={path}: cannot read: {e.strerror}") from None
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise InputError(f"--{flag}={path}: not a {message.DESCRIPTOR.name}: {e}") from None
    return message
