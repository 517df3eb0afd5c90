"""Give a full-integer .tflite uint8 input and output tensors (the Edge TPU's classic interface).

ai-edge-quantizer writes int8 model I/O. A uint8 tensor with the same scale and zero point + 128
holds exactly the same real values (q_u8 = q_i8 + 128), so the rewrite adds one QUANTIZE op
(uint8 -> int8) after each input and one (int8 -> uint8) before each output: what the TensorFlow
converter does for ``inference_input_type=tf.uint8``, and an op the Edge TPU compiler maps.
"""

from __future__ import annotations

from pathlib import Path

from edgetally.errors import ConversionError

_INT8_TO_UINT8_SHIFT = 128


def _opcode_index(model, builtin: int) -> int:
    schema = _schema()
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _uint8_twin(model, subgraph, index: int, suffix: str) -> int:
    """A new uint8 tensor with ``index``'s shape and real-value grid; returns its index."""
    import copy

    schema = _schema()
    source = subgraph.tensors[index]
    if source.type != schema.TensorType.INT8 or source.quantization is None or not len(source.quantization.scale):
        raise ConversionError(
            f"tensor {source.name!r} is not an int8 quantised tensor: cannot give it a uint8 interface"
        )
    twin = copy.deepcopy(source)
    twin.type = schema.TensorType.UINT8
    twin.name = (source.name.decode() if isinstance(source.name, bytes) else source.name) + suffix
    twin.quantization.zeroPoint = [int(z) + _INT8_TO_UINT8_SHIFT for z in source.quantization.zeroPoint]
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    twin.buffer = len(model.buffers) - 1
    subgraph.tensors.append(twin)
    return len(subgraph.tensors) - 1


def _quantize_op(model, source: int, target: int):
    schema = _schema()
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.QUANTIZE)
    op.inputs, op.outputs = [source], [target]
    return op


def to_uint8_interface(source: Path, target: Path) -> None:
    """Rewrite ``source`` (int8 I/O) into ``target`` with uint8 inputs and outputs, values unchanged."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(source))
    subgraph = model.subgraphs[0]
    renamed: dict[int, int] = {}
    head, tail = [], []
    for index in list(subgraph.inputs):
        twin = _uint8_twin(model, subgraph, index, "_uint8")
        head.append(_quantize_op(model, twin, index))
        renamed[index] = twin
    for index in list(subgraph.outputs):
        twin = _uint8_twin(model, subgraph, index, "_uint8")
        tail.append(_quantize_op(model, index, twin))
        renamed[index] = twin
    subgraph.operators = head + list(subgraph.operators) + tail
    subgraph.inputs = [renamed[i] for i in subgraph.inputs]
    subgraph.outputs = [renamed[i] for i in subgraph.outputs]
    for signature in model.signatureDefs or []:
        for item in [*(signature.inputs or []), *(signature.outputs or [])]:
            item.tensorIndex = renamed.get(item.tensorIndex, item.tensorIndex)
    flatbuffer_utils.write_model(model, str(target))
