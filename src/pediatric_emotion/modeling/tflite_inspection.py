"""Read what a TFLite flatbuffer holds: its operators, tensor types and weights.

Pure functions of the model bytes, built on ``tensorflow.lite.tools.flatbuffer_utils`` (the
interpreter is used only for :func:`input_output_details`). Used to check that a conversion did
what was asked (no float ops left in an int8 model, float16 weights, pruning sparsity and
clustering's few distinct values surviving conversion).

Weights are the filter inputs (input 1) of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and
TRANSPOSE_CONV. A filter computed at run time by DEQUANTIZE (float16 or hybrid models) or DENSIFY
(``Optimize.EXPERIMENTAL_SPARSITY``) is followed back to its constant, which is decoded (and
densified) in its stored dtype: int8 weights are the raw integers, not dequantized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

# Output-channel axis of each weight-bearing op's filter, in TFLite's layout.
WEIGHT_OPS: dict[str, int] = {
    "CONV_2D": 0,  # [out, h, w, in]
    "DEPTHWISE_CONV_2D": 3,  # [1, h, w, out]
    "FULLY_CONNECTED": 0,  # [out, in]
    "TRANSPOSE_CONV": 0,  # [out, h, w, in]
}
_FILTER_INPUT = 1
_PASS_THROUGH_OPS = ("DEQUANTIZE", "DENSIFY")  # a filter computed from one constant input


@dataclass(frozen=True, eq=False)
class WeightTensor:
    """One constant filter tensor as stored in the flatbuffer (values read-only)."""

    name: str
    op: str
    shape: tuple[int, ...]
    dtype: str
    values: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0

    @property
    def channel_axis(self) -> int:
        """Axis of the output channels (0, or 3 for DEPTHWISE_CONV_2D)."""
        return WEIGHT_OPS[self.op]

    def zero_mask(self) -> np.ndarray:
        """True where the weight is exactly zero (stored value equal to the zero point)."""
        if self.zero_point is None or self.zero_point.size == 0:
            return self.values == 0
        zero_point = self.zero_point
        if zero_point.size > 1:
            broadcast = [1] * self.values.ndim
            broadcast[self.quantized_dimension] = zero_point.size
            zero_point = zero_point.reshape(broadcast)
        return self.values == zero_point.astype(self.values.dtype)

    def unique_per_channel(self) -> np.ndarray:
        """Number of distinct stored values in each output channel."""
        axis = self.channel_axis
        rows = np.moveaxis(self.values, axis, 0).reshape(self.values.shape[axis], -1)
        if rows.shape[1] == 0:
            return np.zeros(rows.shape[0], dtype=np.int64)
        ordered = np.sort(rows, axis=1)
        return (ordered[:, 1:] != ordered[:, :-1]).sum(axis=1) + 1


@cache
def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


@cache
def _builtin_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


@cache
def _type_names() -> dict[int, str]:
    types = _schema().TensorType
    return {
        v: k.lower() for k, v in vars(types).items() if not k.startswith("_") and isinstance(v, int)
    }


def _dtype_name(tensor_type: int) -> str:
    return _type_names().get(tensor_type, f"type_{tensor_type}")


def _read_model(content: bytes) -> Any:
    from tensorflow.lite.tools import flatbuffer_utils

    if len(content) < 8 or bytes(content[4:8]) != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    return flatbuffer_utils.read_model_from_bytearray(bytearray(content))


def editable_model(content: bytes) -> Any:
    """The flatbuffer as tflite's object API (``ModelT``) to change and :func:`pack_model` again;
    buffer contents as numpy arrays (``read_model_from_bytearray`` gives bytearray slices, which
    ``Pack`` copies one byte at a time)."""
    model = _read_model(content)
    for buffer in model.buffers:
        if buffer.data is not None and not isinstance(buffer.data, np.ndarray):
            buffer.data = np.frombuffer(bytes(buffer.data), dtype=np.uint8)
    return model


def pack_model(model: Any) -> bytes:
    """The flatbuffer of an object-API model (see :func:`editable_model`)."""
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _op_name(model: Any, opcode_index: int) -> str:
    opcode = model.operatorCodes[opcode_index]
    code = max(opcode.deprecatedBuiltinCode, opcode.builtinCode)
    if code == _schema().BuiltinOperator.CUSTOM:
        custom = opcode.customCode
        return custom.decode("utf-8") if isinstance(custom, bytes) else str(custom)
    return _builtin_names().get(code, f"BUILTIN_{code}")


def _text(value: bytes | str | None) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")


def operator_names(content: bytes) -> list[str]:
    """Op names of the main subgraph's operators, in execution order (custom ops by code)."""
    model = _read_model(content)
    return [_op_name(model, op.opcodeIndex) for op in model.subgraphs[0].operators or []]


def _buffer_bytes(model: Any, tensor: Any) -> bytes | None:
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers):
        return None
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    return bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()


def _index_vector(vector: Any) -> np.ndarray:
    values = getattr(vector, "values", None)
    return np.asarray([] if values is None else values, dtype=np.int64)


def _densify(stored: np.ndarray, sparsity: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Dense array of a tensor stored in TFLite's sparse format (format_converter.cc's rules)."""
    dense_type = _schema().DimensionType.DENSE
    order = [int(x) for x in sparsity.traversalOrder]
    block_map = [int(x) for x in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    rank = len(shape)
    position = np.zeros(1, dtype=np.int64)  # index into the level's segments, per node
    levels: list[np.ndarray] = []  # per traversal level, the index of each node
    for dim in sparsity.dimMetadata:
        if dim.format == dense_type:
            size = int(dim.denseSize)
            children = np.arange(size, dtype=np.int64)
            new_position = (position[:, None] * size + children).reshape(-1)
            levels = [np.repeat(level, size) for level in levels]
            levels.append(np.tile(children, len(position)))
        else:
            segments = _index_vector(dim.arraySegments)
            indices = _index_vector(dim.arrayIndices)
            starts, counts = segments[position], segments[position + 1] - segments[position]
            offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
            new_position = offsets + np.arange(int(counts.sum()), dtype=np.int64)
            levels = [np.repeat(level, counts) for level in levels]
            levels.append(indices[new_position])
        position = new_position
    if position.size != stored.size:
        raise ValueError(
            f"sparse tensor holds {stored.size} values but its index has {position.size}"
        )
    original: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * rank
    for level in range(rank):
        original[order[level]] = levels[level]
    for level in range(rank, len(order)):
        block = order[level] - rank
        block_size = int(sparsity.dimMetadata[level].denseSize)
        original[block_map[block]] = original[block_map[block]] * block_size + levels[level]
    dense = np.zeros(math.prod(shape), dtype=stored.dtype)
    dense[np.ravel_multi_index(original, shape)] = stored
    return dense.reshape(shape)


def _decode(model: Any, tensor: Any) -> tuple[str, np.ndarray]:
    raw = _buffer_bytes(model, tensor)
    dtype = _dtype_name(tensor.type)
    try:
        numpy_dtype = np.dtype(dtype).newbyteorder("<")
    except TypeError:
        raise NotImplementedError(f"cannot decode {dtype} tensor {_text(tensor.name)!r}") from None
    shape = tuple(int(x) for x in (tensor.shape if tensor.shape is not None else []))
    stored = np.frombuffer(raw or b"", dtype=numpy_dtype).astype(np.dtype(dtype), copy=False)
    if tensor.sparsity is not None:
        values = _densify(stored, tensor.sparsity, shape)
    else:
        values = stored.reshape(shape)
    values = np.array(values)  # own, writable copy before freezing
    values.setflags(write=False)
    return dtype, values


def _optional_array(values: Any, dtype: Any) -> np.ndarray | None:
    if values is None or len(values) == 0:
        return None
    return np.asarray(values, dtype=dtype)


def weight_tensors(content: bytes) -> list[WeightTensor]:
    """The constant filters of the main subgraph's conv / depthwise / dense / transposed-conv ops,
    each once, in operator order."""
    model = _read_model(content)
    subgraph = model.subgraphs[0]
    tensors = subgraph.tensors or []
    operators = subgraph.operators or []
    producers = {
        int(out): op for op in operators for out in (op.outputs if op.outputs is not None else [])
    }
    seen: set[int] = set()
    weights: list[WeightTensor] = []
    for op in operators:
        op_name = _op_name(model, op.opcodeIndex)
        if op_name not in WEIGHT_OPS or op.inputs is None or len(op.inputs) <= _FILTER_INPUT:
            continue
        index = int(op.inputs[_FILTER_INPUT])
        while index >= 0 and _buffer_bytes(model, tensors[index]) is None:
            producer = producers.get(index)
            if producer is None or _op_name(model, producer.opcodeIndex) not in _PASS_THROUGH_OPS:
                index = -1
            else:
                index = int(producer.inputs[0])
        if index < 0 or index in seen:
            continue
        seen.add(index)
        tensor = tensors[index]
        dtype, values = _decode(model, tensor)
        quantization = tensor.quantization
        weights.append(
            WeightTensor(
                name=_text(tensor.name),
                op=op_name,
                shape=tuple(values.shape),
                dtype=dtype,
                values=values,
                scale=_optional_array(quantization and quantization.scale, np.float32),
                zero_point=_optional_array(quantization and quantization.zeroPoint, np.int64),
                quantized_dimension=int(quantization.quantizedDimension) if quantization else 0,
            )
        )
    return weights


def weight_statistics(content: bytes) -> dict[str, Any]:
    """Sparsity and distinct-value counts of the model's weights (stored values: raw int8).

    Keys: ``sparsity`` (share of exactly-zero weights over all weight tensors), ``max_unique_per_
    channel`` (most distinct values in one output channel), ``max_unique_per_tensor``,
    ``weight_count`` (number of weight values), ``weight_tensor_count`` and ``dtypes`` (sorted).
    """
    weights = weight_tensors(content)
    total = sum(w.values.size for w in weights)
    zeros = sum(int(w.zero_mask().sum()) for w in weights)
    return {
        "sparsity": zeros / total if total else 0.0,
        "max_unique_per_channel": max(
            (int(w.unique_per_channel().max(initial=0)) for w in weights), default=0
        ),
        "max_unique_per_tensor": max((int(np.unique(w.values).size) for w in weights), default=0),
        "weight_count": int(total),
        "weight_tensor_count": len(weights),
        "dtypes": sorted({w.dtype for w in weights}),
    }


def tensor_types(content: bytes) -> dict[str, Any]:
    """Dtypes of the single input and output of the main subgraph, and of all tensors (sorted)."""
    model = _read_model(content)
    subgraph = model.subgraphs[0]
    inputs, outputs = list(subgraph.inputs), list(subgraph.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
    return {
        "input": _dtype_name(subgraph.tensors[inputs[0]].type),
        "output": _dtype_name(subgraph.tensors[outputs[0]].type),
        "all": sorted({_dtype_name(t.type) for s in model.subgraphs for t in s.tensors or []}),
    }


def _io_detail(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(x) for x in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
    }


def input_output_details(content: bytes) -> dict[str, dict[str, Any]]:
    """Shape, dtype and quantization (0.0 / 0 when unquantized) of the single input and output,
    as the LiteRT interpreter reports them."""
    from pediatric_emotion.modeling.tflite_runner import litert_interpreter

    interpreter = litert_interpreter(content)
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
    return {"input": _io_detail(inputs[0]), "output": _io_detail(outputs[0])}
