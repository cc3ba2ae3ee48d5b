"""The safety policy on one page: what is Keras, what is dangerous, and every size limit.

Everything the scanners decide by is here, as data: the module prefixes that belong to Keras, the
callables and modules that are never modelling code, the TensorFlow ops that reach outside tensor
maths, and the sizes past which a member, a config or an attribute is not read. Read this page to
audit what the scan passes.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Module prefixes that belong to Keras itself: Keras 3 (``keras``, ``keras.src...``), Keras 2
#: and tf.keras names found in legacy files, and KerasHub (``keras_hub``, formerly
#: ``keras_nlp``), the Keras team's model library whose presets name its classes. Matched on
#: whole dotted components; the same gadget and file-reference rules apply to all of them.
KERAS_MODULES = (
    "keras",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    "keras_hub",
    "keras_nlp",
)


#: Keras functions and modules that are not modelling code: they download or read files, load
#: other models, write files or flip global switches. Keras 3.9+ refuses most of them in
#: ``_retrieve_class_or_fn`` (``NON_MODELING_APIS``); older Keras and tf.keras do not.
_DANGEROUS_NAMES = frozenset(
    {
        "clear_session",
        "deserialize_keras_object",
        "enable_unsafe_deserialization",
        "func_load",
        "get_file",
        "get_registered_object",
        "load_img",
        "load_model",
        "load_weights",
        "model_from_config",
        "model_from_json",
        "model_from_yaml",
        "plot_model",
        "register_keras_serializable",
        "save_img",
        "save_model",
        "save_weights",
        "serialize_keras_object",
        "set_global_attribute",
        "audio_dataset_from_directory",
        "image_dataset_from_directory",
        "text_dataset_from_directory",
        "timeseries_dataset_from_array",
    }
)


_DANGEROUS_MODULES = (
    "keras.applications",
    "keras.backend",
    "keras.callbacks",
    "keras.config",
    "keras.datasets",
    "keras.distribution",
    "keras.export",
    "keras.legacy",
    "keras.mixed_precision",
    "keras.models",
    "keras.preprocessing",
    "keras.saving",
    "keras.utils",
    "keras.visualization",
    "keras.src.applications",
    "keras.src.backend.common.global_state",
    "keras.src.backend.config",
    "keras.src.callbacks",
    "keras.src.datasets",
    "keras.src.distribution",
    "keras.src.export",
    "keras.src.legacy",
    "keras.src.models",
    "keras.src.saving",
    "keras.src.utils",
    "keras.src.visualization",
    # KerasHub's preset, download and checkpoint-conversion helpers (keras_utils, which holds
    # activations such as gelu_approximate, is modelling code)
    "keras_hub.utils",
    "keras_hub.src.utils.preset_utils",
    "keras_hub.src.utils.transformers",
    "keras_hub.src.utils.timm",
    "keras_nlp.utils",
    "keras_nlp.src.utils.preset_utils",
    "keras_nlp.src.utils.transformers",
)


#: Classes, unlike functions, are refused only from the modules that hold no modelling object at
#: all (legacy layers, dtype policies, FeatureSpace... live in the other modules above).
_DANGEROUS_CLASS_MODULES = (
    "keras.callbacks",
    "keras.config",
    "keras.datasets",
    "keras.saving",
    "keras.src.backend.common.global_state",
    "keras.src.backend.config",
    "keras.src.callbacks",
    "keras.src.datasets",
    "keras.src.legacy.saving",
    "keras.src.saving",
    "keras.src.utils.file_utils",
    "keras_hub.src.utils.preset_utils",
    "keras_nlp.src.utils.preset_utils",
)


_UNSAFE_WORDS = ("enable_unsafe_deserialization", "safe_mode_saving", "unsafe_deserialization")


#: Config keys whose string value is a path that a layer reads (or loads) while being built:
#: lookup/vectorization vocabularies, KerasHub tokenizer files, TFSMLayer's SavedModel.
_FILE_KEYS = frozenset(
    {"vocabulary", "vocabulary_file", "filepath", "proto", "merges", "spm_model_file"}
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: TensorFlow functions a ``TFOpLambda`` (tf.keras 2.4+) may name and still be pure tensor maths.
#: tf.keras resolves the name against the whole TensorFlow API, ``tf.io.write_file`` included.
_TF_OP_PREFIXES = (
    "__operators__.",
    "math.",
    "nn.",
    "linalg.",
    "signal.",
    "bitwise.",
    "image.",
    "random.",
    "sparse.",
    "ragged.",
)


_TF_OP_NAMES = _words(
    """abs add argmax argmin argsort boolean_mask broadcast_to cast clip_by_norm clip_by_value
    concat cos cumsum divide einsum equal exp expand_dims eye fill floor gather gather_nd greater
    greater_equal identity less less_equal linspace log matmul maximum meshgrid minimum multiply
    norm not_equal one_hot ones ones_like pad pow range rank reduce_all reduce_any reduce_max
    reduce_mean reduce_min reduce_prod reduce_std reduce_sum repeat reshape reverse roll round
    rsqrt scatter_nd shape sigmoid sign sin size slice sort split sqrt square squeeze stack
    stop_gradient strided_slice subtract tanh tensordot tile transpose truediv unstack where
    zeros zeros_like"""
)


#: Raw graph ops a ``TensorFlowOpLayer`` (tf.keras 2.2-2.3) may run and still be pure maths.
_TF_RAW_OPS = _words(
    """Abs Add AddN AddV2 All Any ArgMax ArgMin AvgPool BatchMatMul BatchMatMulV2 BiasAdd
    BroadcastTo Cast Ceil ConcatV2 Const Conv2D Cos Cumsum DepthwiseConv2dNative Div DivNoNan
    Einsum Elu Equal Erf Exp ExpandDims Fill Floor FloorDiv FloorMod GatherNd GatherV2 Greater
    GreaterEqual Identity IdentityN L2Loss LeakyRelu Less LessEqual Log Log1p LogSoftmax
    LogicalAnd LogicalNot LogicalOr MatMul Max MaxPool Maximum Mean Min Minimum Mod Mul Neg
    NotEqual OneHot OnesLike Pack Pad PadV2 Pow Prod Range Rank RealDiv Reciprocal Relu Relu6
    Reshape ResizeBilinear ResizeNearestNeighbor ReverseV2 Round Rsqrt Select SelectV2 Selu Shape
    Sigmoid Sign Sin Size Slice Softmax Softplus Softsign Split SplitV Sqrt Square
    SquaredDifference Squeeze StopGradient StridedSlice Sub Sum Tan Tanh Tile TopKV2 Transpose
    Unpack Where ZerosLike"""
)


_PY_BUILTINS = frozenset(dir(builtins))


def _module_in(module: str, prefixes: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one of them."""
    exact, dotted = _prefix_sets(tuple(prefixes))
    return module in exact or module.startswith(dotted)


@functools.lru_cache(maxsize=64)
def _prefix_sets(prefixes: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names and the ``name.`` prefixes of a module list (asked ~20 times an artifact)."""
    kept = [p for p in prefixes if p]
    return frozenset(kept), tuple(p + "." for p in kept)


def _is_keras_module(module: str) -> bool:
    return _module_in(module, KERAS_MODULES)


ZIP_MAX_MEMBERS = 10_000


#: A member declaring more than this many bytes and more than ``ZIP_MAX_RATIO`` times what it
#: stores is a decompression bomb (Keras 3.13+ uses 4 GiB and 100x when loading; a gate can be
#: stricter because Keras never compresses).
ZIP_BOMB_FLOOR = 64 * 1024 * 1024


ZIP_MAX_RATIO = 100


CONFIG_MAX_BYTES = 64 * 1024 * 1024


#: A TorchModuleWrapper payload (base64) longer than this is reported without being decoded.
TORCH_MAX_BASE64 = CONFIG_MAX_BYTES


H5_MAX_ATTR_BYTES = 64 * 1024 * 1024


#: Bytes of one member read to analyse a pickle or scan compressed weights in memory.
MEMBER_MAX_BYTES = 256 * 1024 * 1024


# ---- The allowlist (issue 26, items 1-3): what Keras defines, and references never modelling code

#: The table of what Keras, tf-keras and KerasHub define, generated by
#: :mod:`pytest_kerasmodel.safety.generate_allowlist` (data in the package, read on first use).
KERAS_NAMES_FILE = "keras_names.json"


@dataclass(frozen=True)
class KerasNames:
    """The generated allowlist: ``(module, name)`` pairs, bare names, registered names, markers."""

    pairs: frozenset[tuple[str, str]]
    names: frozenset[str]
    lowered: frozenset[str]
    registered: frozenset[str]
    markers: frozenset[str]

    def defines(self, module: str, name: str) -> bool:
        """Whether ``module.name`` is a class or function the table holds, by the module
        the file names or (a module renamed between releases) by its name inside Keras."""
        return (module, name) in self.pairs or name in self.names


@functools.lru_cache(maxsize=1)
def keras_names() -> KerasNames:
    """The allowlist table, read once a process from the package data."""
    text = (Path(__file__).with_name(KERAS_NAMES_FILE)).read_text(encoding="utf-8")
    table = json.loads(text)
    pairs = frozenset(
        (module, name) for module, names in table["modules"].items() for name in names
    )
    names = frozenset(table["names"])
    return KerasNames(
        pairs=pairs,
        names=names,
        lowered=frozenset(n.lower() for n in names),
        registered=frozenset(table["registered"]),
        markers=frozenset(table["markers"]),
    )


#: Modules whose name in a config is never modelling code: processes, files, the network,
#: the interpreter. A string value naming one (``"subprocess"``, ``"os.system"``) is a finding in
#: whatever key holds it, since a loader or a later Keras may read keys today's Keras ignores.
SUSPICIOUS_MODULES = _words(
    """os posix nt subprocess builtins __builtin__ __builtins__ sys shutil socket pickle cPickle
    dill cloudpickle marshal importlib imp runpy ctypes pty commands webbrowser urllib urllib2
    urllib3 requests httplib ftplib smtplib telnetlib codeop pdb multiprocessing zipimport
    __main__"""
)


#: Modules named only in a dotted reference (``"io.open"``, ``"pathlib.Path.write_text"``): as a
#: bare word (a layer called ``signal``) they are prose.
SUSPICIOUS_DOTTED_MODULES = SUSPICIOUS_MODULES | _words(
    "io http code signal platform tempfile glob pathlib pkgutil inspect types gc asyncio"
)


#: Python callables that run code whatever module holds them, alarming even as a bare word.
SUSPICIOUS_CALLABLES = _words("exec eval execfile __import__ breakpoint")


#: Keys whose string values Keras resolves as a function or class by name (activations, losses,
#: metrics, initializers, regularizers, constraints, optimizers): the bare name must be one
#: Keras defines. Keras 1 spelled some differently (``init``, ``inner_activation``).
FUNCTION_KEYS = _words(
    """activation recurrent_activation inner_activation attention_activation loss losses
    metrics weighted_metrics optimizer init inner_init kernel_initializer bias_initializer
    recurrent_initializer embeddings_initializer depthwise_initializer pointwise_initializer
    beta_initializer gamma_initializer moving_mean_initializer moving_variance_initializer
    alpha_initializer kernel_regularizer bias_regularizer recurrent_regularizer
    activity_regularizer embeddings_regularizer depthwise_regularizer pointwise_regularizer
    beta_regularizer gamma_regularizer alpha_regularizer kernel_constraint bias_constraint
    recurrent_constraint embeddings_constraint depthwise_constraint pointwise_constraint
    beta_constraint gamma_constraint alpha_constraint W_regularizer b_regularizer
    U_regularizer W_constraint b_constraint U_constraint"""
)


#: Spellings Keras's compile accepts for metrics and losses without defining them as objects.
FUNCTION_ALIASES = _words(
    """acc accuracy ce crossentropy bce binary_crossentropy categorical_crossentropy mse mae
    mape msle cosine cosine_proximity kld kl_divergence linear none"""
)
