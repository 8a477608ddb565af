"""Refuses a SavedModel whose graph could touch files, the network or processes, before any of it runs.

A SavedModel is a program: loading one runs its init ops, and calling its signature runs whatever
ops its author put there (`tf.io.write_file` included). So before this project runs a SavedModel it
did not write itself, it reads saved_model.pb with the protobuf alone (nothing is loaded or run) and
looks at every op: the MetaGraphDef's graph nodes and every function in its library, reachable or
not. An op in DENYLIST is refused in one line naming the op and where it is, unless the user trusts
the model (--trust_model). `saved_model_cli scan` does the same with a shorter list.

The one exception, checkpoint ops (CHECKPOINT_OPS): a SavedModel keeps its variables in a
checkpoint, and its MetaGraphDef's saver_def names the node that saves it (save_tensor_name) and the
one that restores it (restore_op_name; TF Serving runs it on load; tf.saved_model.load restores with
its own ops instead). Save ops are allowed in what the save node runs, restore ops in what the
restore node runs, and nowhere else: a node or function counts as the saver's only if nothing else
reaches it (no other graph node, signature tensor or restored function of the object graph).
Every other denylisted op is refused in the saver's functions too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_keras.errors import InputError, first_line, printable

# tensorflow/python/tools/saved_model_cli.py's _OP_DENYLIST (what `saved_model_cli scan` refuses),
# which tests/inference/test_saved_model_scan.py checks is all here, then the rest of TensorFlow's
# ops that reach outside the process. A digit classifier needs none of them.
SAVED_MODEL_CLI_DENYLIST = frozenset({"WriteFile", "ReadFile", "PrintV2"})  # PrintV2: output_stream may be a file
SAVE_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"})
RESTORE_OPS = frozenset({"Restore", "RestoreV2", "RestoreSlice"})
CHECKPOINT_OPS = SAVE_OPS | RESTORE_OPS
DENYLIST = SAVED_MODEL_CLI_DENYLIST | CHECKPOINT_OPS | frozenset({
    # files: globbing, memory-mapped regions, file system settings, tables and protos read from a path
    "MatchingFiles", "ImmutableConst", "FileSystemSetConfiguration", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2", "LoadAndRemapMatrix", "GenerateVocabRemapping", "DecodeProtoV2",
    "EncodeProto",
    # TF1 readers of files
    "TextLineReader", "TextLineReaderV2", "TFRecordReader", "TFRecordReaderV2", "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2", "WholeFileReader", "WholeFileReaderV2", "LMDBReader", "ReaderRead",
    "ReaderReadV2", "ReaderReadUpTo", "ReaderReadUpToV2", "ReaderRestoreState", "ReaderRestoreStateV2",
    # tf.data reading or writing files, databases or the network (tf.data service)
    "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "LMDBDataset",
    "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset", "MatchingFilesDataset",
    "ExperimentalMatchingFilesDataset", "CacheDataset", "CacheDatasetV2", "SnapshotDataset",
    "SnapshotDatasetV2", "SnapshotDatasetReader", "SnapshotNestedDatasetReader", "SnapshotChunkDataset",
    "ListSnapshotChunksDataset", "SaveDataset", "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord", "DistributedSave", "DataServiceDataset", "DataServiceDatasetV2",
    "DataServiceDatasetV3", "DataServiceDatasetV4",
    # summaries written to files or databases
    "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary",
    "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
    "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter",
    # Python code in the process, and the debugger's ops (their debug_urls write files or gRPC)
    "PyFunc", "PyFuncStateless", "EagerPyFunc", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
    "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2", "Copy", "CopyHost",
    # calls to other processes
    "RemoteCall", "Rpc", "TryRpc", "RpcClient", "RpcCall", "RpcServer", "RpcServerStart",
    "RpcServerRegister",
})
TRUST_HINT = "pass --trust_model to run it if you trust whoever made it"


@dataclass(frozen=True)
class Finding:
    """One denylisted op: the op, its node, and the function holding it (None: the graph itself)."""

    op: str
    node: str
    function: str | None

    def where(self) -> str:
        place = f"function {self.function!r}" if self.function else "the graph"
        return f"node {self.node!r} in {place}"


def read_saved_model(path: str | Path) -> Any:
    """saved_model.pb as a SavedModel protobuf, or one line saying why it is not one."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(pb.read_bytes())
    except (OSError, DecodeError) as e:
        raise InputError(f"{pb}: not a readable SavedModel protobuf: {first_line(e)}") from None
    return proto


def _node_name(tensor: str) -> str:
    """'^name', 'name:0' or 'name:output:0' -> 'name'."""
    return tensor.lstrip("^").split(":")[0]


def _called(node: Any, functions: dict) -> Iterator[str]:
    """The library functions a node calls: as its op, or through func attributes (f, branches, body)."""
    if node.op in functions:
        yield node.op
    for value in node.attr.values():
        if value.func.name:
            yield value.func.name
        yield from (f.name for f in value.list.func)


def _function_closure(names: Iterable[str], functions: dict) -> set[str]:
    """The library functions among `names` and all those they call, transitively."""
    seen = {n for n in names if n in functions}
    pending = list(seen)
    while pending:
        for called in (c for n in functions[pending.pop()].node_def for c in _called(n, functions)):
            if called in functions and called not in seen:
                seen.add(called)
                pending.append(called)
    return seen


def _reach(roots: Iterable[str], nodes: dict, functions: dict) -> tuple[set[str], set[str]]:
    """The graph nodes `roots` depend on (inputs, control inputs) and the functions those call, transitively."""
    seen, called = set(), set()
    stack = [_node_name(r) for r in roots]
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack += [_node_name(i) for i in nodes[name].input]
        called |= set(_called(nodes[name], functions))
    return seen, _function_closure(called, functions)


def _allowed_places(meta_graph: Any, nodes: dict, functions: dict) -> dict[frozenset, set]:
    """Where save ops and restore ops may be: the places that only saver_def's save / restore node reaches.

    A place is a graph node's name, or ("function", name) for any node of that function."""
    saver = meta_graph.saver_def
    save_nodes, save_functions = _reach([saver.save_tensor_name], nodes, functions)
    restore_nodes, restore_functions = _reach([saver.restore_op_name], nodes, functions)
    others = [n for n in nodes if n not in save_nodes | restore_nodes]
    others += [t.name for s in meta_graph.signature_def.values() for t in [*s.inputs.values(), *s.outputs.values()]]
    other_nodes, other_functions = _reach(others, nodes, functions)
    other_functions |= _function_closure(meta_graph.object_graph_def.concrete_functions, functions)
    outside = other_nodes | {("function", f) for f in other_functions}
    return {SAVE_OPS: {*save_nodes, *(("function", f) for f in save_functions)} - outside,
            RESTORE_OPS: {*restore_nodes, *(("function", f) for f in restore_functions)} - outside}


def findings(saved_model: Any, denylist: frozenset = DENYLIST) -> list[Finding]:
    """Every denylisted op in every MetaGraphDef, save / restore ops in the saver's own places excepted."""
    found = []
    for meta_graph in saved_model.meta_graphs:
        nodes = {n.name: n for n in meta_graph.graph_def.node}
        functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
        allowed = _allowed_places(meta_graph, nodes, functions)
        places = [(node, node.name, None) for node in nodes.values()]
        places += [(node, ("function", name), name) for name, f in functions.items() for node in f.node_def]
        for node, place, function in places:
            if node.op not in denylist:
                continue
            if any(node.op in ops and place in where for ops, where in allowed.items()):
                continue
            found.append(Finding(node.op, node.name, function))
    return found


def check_untrusted(path: str | Path) -> None:
    """Raises InputError, in one line naming the op and where it is, if the SavedModel at `path` has a
    denylisted op anywhere (see the module's docstring); returns quietly if it has none."""
    found = findings(read_saved_model(path))
    if not found:
        return
    first, ops = found[0], sorted({f.op for f in found})
    more = f" (denylisted ops in it: {', '.join(ops)})" if len(found) > 1 else ""
    raise InputError(printable(
        f"{path}: refused: op {first.op} ({first.where()}) can reach files, the network or other "
        f"processes{more}; {TRUST_HINT}"))
