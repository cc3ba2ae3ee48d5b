"""Which TensorFlow graph operations are pure computation, and what every other one can do.

A SavedModel's graph runs when it is served or loaded into Keras: an operation that reads a file,
opens a socket or calls back into Python does so then. The scan passes a graph only when every
operation in it is on the allowlist of pure computation (:data:`PURE_OPS`, generated from the
op registry of an installed TensorFlow by ``python -m pytest_kerasmodel.safety.generate_tfops``
and checked against it by ``tests/test_safety_tfops.py``), and names every other one with what
it can do.

The classification is reviewed here, as data, by op-name families (:data:`CAPABILITY_FAMILIES`,
first match wins); the generator only applies it to the registry:

- an op matching a capability family is not pure, whatever its registry flags say (``ReadFile``
  and ``ImmutableConst`` are registered as stateless);
- an op the registry marks stateless and no family names is pure computation;
- a stateful op is pure only when it belongs to a reviewed in-memory family
  (:data:`STATEFUL_PURE_FAMILIES`: variables, optimizers' updates, random numbers, lookup
  tables, tensor arrays, function calls and control flow, tf.data iterators);
- tf.data ops are pure unless they are a source that reaches outside (files, the data service)
  or a cache that may be a file: a pipeline's functions are in the library and scanned too;
- the checkpoint ops (:data:`SAVER_OPS`) read and write checkpoint files: they pass only inside
  the saver that ``tf.saved_model.save`` / ``tf.compat.v1.train.Saver`` writes.

This module imports nothing from TensorFlow: the scan uses only the tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pytest_kerasmodel.safety.tfops_registry import OTHER_OPS, PURE_OPS, TF_VERSION

__all__ = [
    "CAPABILITIES",
    "CAPABILITY_FAMILIES",
    "OTHER_OPS",
    "PURE_OPS",
    "SAVER_OPS",
    "STATEFUL_PURE_FAMILIES",
    "TF_VERSION",
    "classify",
    "classify_registry",
    "op_capability",
]

#: What an op that is not pure computation can do, by the short key the tables use.
CAPABILITIES: dict[str, str] = {
    "files-read": "reads files",
    "files-write": "writes files",
    "file-map": "maps a file into memory",
    "python": "runs Python code",
    "network": "reaches the network or other processes",
    "print": "prints to stderr or to a file",
    "hidden-graph": "runs a serialised graph held in a tensor, which the scan cannot see",
    "device": "drives TPU, accelerator or cluster runtime state",
    "checkpoint": "reads or writes checkpoint files",
    "native": "calls native code by name",
    "stablehlo": "runs a serialised StableHLO module (jax2tf) whose calls were not reviewed",
    "session": "reaches session or process state outside the graph",
    "stateful": "has side effects that were not reviewed (a stateful op)",
}
_FILES_READ, _FILES_WRITE, _FILE_MAP, _PYTHON = "files-read", "files-write", "file-map", "python"
_NETWORK, _PRINT, _HIDDEN, _DEVICE = "network", "print", "hidden-graph", "device"
_CHECKPOINT, _NATIVE, _SESSION = "checkpoint", "native", "session"


#: Op-name families that reach outside tensor maths, in order (first match wins): a regular
#: expression on the whole op name, and what such an op can do when the graph runs.
CAPABILITY_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"(Eager)?PyFunc(Stateless)?", _PYTHON),
    (r"ImmutableConst", _FILE_MAP),
    (r"Print(V2)?", _PRINT),
    (r"(Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|MergeV2Checkpoints)", _CHECKPOINT),
    (r"DTensorRestoreV2|LoadAndRemapMatrix|CalibrationStatisticsSaver", _CHECKPOINT),
    (r"DistributedSave|SaveDataset(V2)?|(Experimental)?DatasetToTFRecord", _FILES_WRITE),
    (r"WriteFile|DumpTensor|.*Summary(Db|File)?Writer|Write\w*Summary|ImportEvent", _FILES_WRITE),
    (r"Debug\w+|Copy|CopyHost", _FILES_WRITE),  # debug ops and debug_ops_spec: debug URLs
    (r"ReadFile|MatchingFiles|(Experimental)?MatchingFilesDataset", _FILES_READ),
    (r"\w*Reader(V2)?|Reader\w+|RecordInput|InitializeTableFromTextFile(V2)?", _FILES_READ),
    (
        r"(Experimental)?(CSV|Csv|Sql|LMDB|TFRecord|TextLine|FixedLengthRecord)Dataset(V\d)?",
        _FILES_READ,
    ),
    (r"LoadDataset|\w+Snapshot\w*|Snapshot\w+", _FILES_READ),  # not Snapshot: a copy
    (r"(DecodeProto|EncodeProto)(V2)?", _FILES_READ),  # descriptor_source may be a file path
    (r"FileSystemSetConfiguration", _FILES_READ),
    (r"DataServiceDataset(V\d)?|RegisterDataset(V2)?|Rpc\w+|DeleteRpcFutureResource", _NETWORK),
    (r"RemoteCall|_?(Host)?(Send|Recv)|Collective\w+|_?Nccl\w+|WorkerHeartbeat|AllToAll", _NETWORK),
    (r"CrossReplicaSum|_Recv\w*|_Send\w*|\w*BcastRecv\w*|\w*BcastSend\w*", _NETWORK),
    (r"XlaCustomCall(V2)?", _NATIVE),
    (r"XlaCallModule", "stablehlo"),
    (r"\w*TPU\w*|\w*Tpu\w*|_?Xla\w*|\w*Infeed\w*|\w*Outfeed\w*|\w*TPUEmbedding\w*", _DEVICE),
    (r"\w*(Configure|Shutdown|Initialize)\w*(TPU|System|Host)\w*|SyncDevice|DTensor\w+", _DEVICE),
    (r"CopyToMesh\w*|_Copy(FromGpuToHost|FromHostToGpu)", _DEVICE),
    (r"(Get|Delete)Session(Handle|Tensor)(V2)?", _SESSION),
    # tf.data: the sources above reach outside; a cache may be a file; a graph in a tensor is
    # not seen by the scan. The other dataset ops only transform tensors in memory.
    (r"CacheDataset(V2)?", _FILES_WRITE),  # its filename input, when not empty
    (r"DatasetFromGraph", _HIDDEN),
    (
        r"\w*Queue\w*|Barrier\w*|(Ordered)?Map(Clear|IncompleteSize|Peek|Size|Stage|Unstage\w*)",
        _SESSION,
    ),
    (r"Stage(Clear|Peek|Size)?|Unstage|SleepOp|SleepIdentityOp|Timestamp", _SESSION),
)

#: Stateful op families that still only compute in memory: variables and their updates (every
#: optimizer's ``ResourceApply*``), random numbers, lookup tables filled from tensors, tensor
#: arrays and stacks, function calls and control flow, assertions.
STATEFUL_PURE_FAMILIES: tuple[str, ...] = (
    r"_?VarHandlesOp|VarHandleOp|VarIsInitializedOp|ReadVariableOp|_ReadVariablesOp",
    r"(Assign|AssignAdd|AssignSub)(VariableOp)?|DestroyResourceOp|DisableCopyOnRead",
    r"Variable(V2)?|VariableShape|TemporaryVariable|DestroyTemporaryVariable",
    r"IsVariableInitialized|ResourceInitializedOp|IsResourceHandleRefCounting|MakeWeakResourceHandle",
    r"Resource(Sparse)?Apply\w+|ResourceGather(Nd)?|ResourceScatter\w+|ResourceStridedSliceAssign",
    r"ResourceCountUpTo|Resource(Conditional|Sparse)?Accumulator\w*|(Sparse)?ConditionalAccumulator",
    r"Random\w*|Stateful(Random|Standard|Truncated|Uniform)\w*|StatelessRandomGetAlg",
    r"Rng(Skip|ReadAndSkip)|NonDeterministicInts|Multinomial|(Parameterized)?TruncatedNormal",
    r"\w*CandidateSampler|SampleDistortedBoundingBox(V2)?|Skipgram|NegTrain",
    r"(Anonymous)?(Mutable(Dense)?)?HashTable\w*|LookupTable\w+V2|InitializeTableV2",
    r"TensorArray\w*|Stack(V2|PushV2|PopV2|CloseV2)?|DeepCopy|Empty|_ParallelConcatStart",
    r"(Add|AddMany|TakeMany)Sparse\w*TensorsMap",
    r"StatefulPartitionedCall|_?If|Case|_?While|RiscWhile|For",
    r"Assert|CheckNumerics(V2)?|GuaranteeConst|DeviceIndex|DevicePlacementOp|GraphDefVersion",
    r"CudnnRNN\w*|BoostedTrees\w*|Mutex(V2|Lock)|ConsumeMutexLock|IsTensorFloat32Enabled",
    r"_Arg|_Retval|_DeviceArg|_DeviceRetval|_ScopedAllocator\w*|ResourceUsingOp|StubResourceHandleOp",
    r"ResourceCreateOp|TestAttr|DtypeWithDefaultOp|RequiresOlderGraphVersion|GlobalIterId",
    # tf.data's in-memory pipeline state (iterators, seeds, caches in memory, thread pools)
    r"\w*Iterator\w*|\w*Dataset\w*|(Anonymous|Delete|Dummy)\w*(SeedGenerator|MemoryCache)",
    r"DummyIterationCounter|\w*ThreadPool\w*|\w*StatsAggregatorHandle(V2)?",
    # TensorFlow Text (KerasHub's tokenizers): a SentencePiece model from a string, WordPiece
    # over a lookup table, both in memory
    r"Sentencepiece\w*Op|WordpieceTokenizeWithOffsets",
)

#: The checkpoint ops, and the string ops that build checkpoint names, that the saver uses.
SAVER_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "SaveSlices", "Restore", "RestoreSlice"}
)

_CAPABILITIES = tuple((re.compile(pattern), what) for pattern, what in CAPABILITY_FAMILIES)
_STATEFUL_PURE = re.compile("|".join(f"(?:{pattern})" for pattern in STATEFUL_PURE_FAMILIES))
_UNREVIEWED_STATEFUL = "stateful"


def classify(name: str, is_stateful: bool) -> str | None:
    """What an op of the registry can do (a key of :data:`CAPABILITIES`), or None when it is
    pure computation."""
    for pattern, what in _CAPABILITIES:
        if pattern.fullmatch(name):
            return what
    if not is_stateful or _STATEFUL_PURE.fullmatch(name):
        return None
    return _UNREVIEWED_STATEFUL


def classify_registry(
    ops: Iterable[tuple[str, bool]],
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The registry's ops (name, is_stateful) split into the pure ones and the others' keys."""
    pure: list[str] = []
    other: dict[str, str] = {}
    for name, stateful in sorted(ops):
        what = classify(name, stateful)
        if what is None:
            pure.append(name)
        else:
            other[name] = what
    return tuple(pure), other


def op_capability(op: str) -> str | None:
    """What a graph op can do when the graph runs, or None when it is pure computation.

    An op the shipped registry does not know is not pure: if no family names it, it is a custom
    op, which TensorFlow runs from a native library loaded beside the model.
    """
    if op in PURE_OPS:
        return None
    known = OTHER_OPS.get(op)
    if known is not None:
        return CAPABILITIES.get(known, known)
    for pattern, what in _CAPABILITIES:
        if pattern.fullmatch(op):
            return CAPABILITIES[what]
    return (
        f"is no op of TensorFlow {TF_VERSION}'s registry: a custom op, which runs native code "
        "from a library loaded beside the model"
    )
