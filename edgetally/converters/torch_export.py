"""PyTorch model inputs -> an FP32 ONNX file, which then takes exactly the ONNX path.

Three kinds of MODEL are accepted:

- ``package.module:factory`` plus ``--checkpoint FILE``: the factory builds the ``nn.Module``, the
  checkpoint (a state_dict, or a dict holding one under ``state_dict``/``model``) is loaded with
  ``torch.load(..., weights_only=True)``: a checkpoint that needs pickled code is refused, never run.
- a TorchScript file (``torch.jit.save``; any suffix, recognised by ``torch.jit.load``),
- a ``torch.export`` program (``.pt2``, ``torch.export.load``).

Each is exported with ``torch.onnx.export`` (the TorchScript-based exporter: ``dynamo=False`` needs
no onnxscript), opset 13, a static ``1x3xHxW`` input named ``images``. The exported file is run
once in onnxruntime against the torch model on a random tensor: a silent export bug stops here,
not on the board. torch is imported only inside functions (the runner never imports this module).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetally.errors import ConversionError

OPSET = 13
INPUT_NAME = "images"
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".pt2", ".ptl", ".torchscript"})
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# Parity of the exported graph with torch (float32, same random input): relative to the output's range.
_RTOL = 1e-3


@dataclass(frozen=True)
class TorchExport:
    """Where the ONNX file went and what it came from (for manifest notes and the report)."""

    onnx_path: Path
    kind: str  # "factory" | "torchscript" | "export"
    source: str
    output_names: tuple[str, ...]
    max_abs_diff: float
    torch_version: str

    def note(self) -> str:
        return (
            f"exported from PyTorch {self.kind} {self.source} (torch {self.torch_version}, torch.onnx.export "
            f"opset {OPSET}); ONNX vs torch max abs diff {self.max_abs_diff:.2e} on a random input"
        )


def is_factory_spec(model: str | Path) -> bool:
    """'pkg.module:factory' (and not an existing file whose name happens to contain a colon)."""
    text = str(model)
    return bool(_FACTORY.match(text)) and not Path(text).exists()


def is_torch_model(model: str | Path) -> bool:
    """True for a module:factory spec or a file that is not ONNX (TorchScript / .pt2 / .pt / .pth)."""
    if is_factory_spec(model):
        return True
    path = Path(model)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return True
    return path.is_file() and path.suffix.lower() != ".onnx" and _is_zip(path)


def _is_zip(path: Path) -> bool:
    # torch.save / torch.jit.save / torch.export.save all write zip archives; ONNX is protobuf.
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def export_to_onnx(
    model: str | Path, out_onnx: Path, input_size: int | tuple[int, int], checkpoint: Path | None = None
) -> TorchExport:
    """Load ``model`` (see module doc), export it to ``out_onnx`` and check ONNX == torch on a random input.

    input_size: 416 or (height, width). Raises ConversionError naming what is wrong.
    """
    import torch

    height, width = _size(input_size)
    kind, module = load_torch_model(model, checkpoint)
    if kind != "factory" and checkpoint is not None:
        raise ConversionError(
            f"--checkpoint applies to a module:factory MODEL; {model} is a {kind} file with its weights"
        )
    example = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 255.0
    expected = _run_torch(module, example, model)
    names = _output_names(len(expected))
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    _export(module, example, out_onnx, names, model)
    diff = _check_parity(out_onnx, example.numpy(), expected, model)
    return TorchExport(out_onnx, kind, str(model), tuple(names), diff, torch.__version__)


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    dims = [size, size] if isinstance(size, int) else list(size)
    if len(dims) != 2 or any(int(d) <= 0 for d in dims):
        raise ConversionError(f"input size {size!r}: expected a positive int or (height, width)")
    return int(dims[0]), int(dims[1])


def load_torch_model(model: str | Path, checkpoint: Path | None = None) -> tuple[str, Any]:
    """-> (kind, callable module in eval mode) for a factory spec, a TorchScript file or a .pt2."""
    if is_factory_spec(model):
        return "factory", _from_factory(str(model), checkpoint)
    path = Path(model)
    if not path.is_file():
        hint = " (a factory is written package.module:function)" if ":" in str(model) else ""
        raise ConversionError(f"{model}: no such file{hint}")
    if path.suffix.lower() == ".pt2":
        return "export", _from_pt2(path)
    return "torchscript", _from_torchscript(path)


def _from_factory(spec: str, checkpoint: Path | None) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ConversionError(f"{spec}: cannot import module '{module_name}': {exc}") from exc
    factory: Any = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConversionError(f"{spec}: module '{module_name}' has no attribute '{attr}'")
    if not callable(factory):
        raise ConversionError(f"{spec}: '{attr}' is not callable (expected a function returning an nn.Module)")
    try:
        net = factory()
    except Exception as exc:  # user code: report whatever it raised
        raise ConversionError(f"{spec}: calling {attr}() failed: {type(exc).__name__}: {exc}") from exc
    import torch

    if not isinstance(net, torch.nn.Module):
        raise ConversionError(f"{spec}: {attr}() returned {type(net).__name__}, expected a torch.nn.Module")
    if checkpoint is None:
        raise ConversionError(f"{spec}: a module:factory MODEL needs --checkpoint FILE (its trained state_dict)")
    _load_state(net, Path(checkpoint), spec)
    return net.eval()


def _import(module_name: str):
    """Import like `python -m`: the current directory is searched too (a training repo's own module)."""
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(cwd)


def _load_state(net: Any, checkpoint: Path, spec: str) -> None:
    import pickle

    import torch

    if not checkpoint.is_file():
        raise ConversionError(f"--checkpoint {checkpoint}: no such file")
    try:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConversionError(f"--checkpoint {checkpoint}: {_unpickling_reason(exc)}") from exc
    except Exception as exc:  # zip/format errors surface as RuntimeError, EOFError, ...
        raise ConversionError(
            f"--checkpoint {checkpoint}: not a torch checkpoint: {type(exc).__name__}: {exc}"
        ) from exc
    state = _state_dict(state, checkpoint)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConversionError(f"--checkpoint {checkpoint} does not fit {spec}: {_short(exc)}") from exc


def _unpickling_reason(exc: Exception) -> str:
    """Why weights_only=True refused the file: pickled code/objects (named), or not a checkpoint at all."""
    match = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if match is None:
        return f"not a torch checkpoint (weights_only=True cannot read it: {_short(exc, 1)})"
    return (
        f"not loadable with weights_only=True: it holds pickled code or objects ({match.group(1)}), which are "
        "never executed here. Save only the weights: torch.save(model.state_dict(), FILE)"
    )


def _state_dict(state: Any, checkpoint: Path) -> dict:
    """A plain state_dict, or one nested under the usual training-checkpoint keys."""
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model", "ema"):
            if isinstance(state.get(key), dict):
                return state[key]
        if state and all(hasattr(v, "shape") for v in state.values()):
            return state
    raise ConversionError(f"--checkpoint {checkpoint}: holds {type(state).__name__}, not a state_dict of tensors")


def _short(exc: Exception, lines: int = 4) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()[:lines])
    return text if len(text) < 600 else text[:600] + " ..."


def _from_torchscript(path: Path) -> Any:
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # torch.jit.load raises RuntimeError / ValueError for anything else
        if _is_state_dict(path):
            raise ConversionError(
                f"{path}: a checkpoint (state_dict), not a TorchScript file: give the model's factory as "
                f"MODEL (package.module:function) and this file as --checkpoint"
            ) from exc
        raise ConversionError(
            f"{path}: not a TorchScript file (torch.jit.load: {_short(exc, 1)}) nor a .pt2 torch.export program"
        ) from exc


def _is_state_dict(path: Path) -> bool:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # anything unreadable is simply "not a state_dict"
        return False
    return isinstance(state, dict)


def _from_pt2(path: Path) -> Any:
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: not a torch.export program (torch.export.load: {_short(exc, 1)})") from exc
    return program.module()  # a GraphModule; _export traces it (see there)


def _run_torch(module: Any, example: Any, model: str | Path) -> list[np.ndarray]:
    import torch

    try:
        with torch.no_grad():
            result = module(example)
    except Exception as exc:  # shape mismatches inside user code surface as RuntimeError
        raise ConversionError(
            f"{model}: the model fails on a {list(example.shape)} input (check --input-size): {_short(exc, 2)}"
        ) from exc
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    if not outputs or not all(isinstance(o, torch.Tensor) for o in outputs):
        raise ConversionError(
            f"{model}: forward() must return a tensor or a tuple of tensors, got {type(result).__name__}"
        )
    return [o.detach().float().numpy() for o in outputs]


def _output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output{i}" for i in range(count)]


def _export(module: Any, example: Any, out_onnx: Path, names: list[str], model: str | Path) -> None:
    import warnings

    import torch

    # An ExportedProgram's module refuses train(False), which the TorchScript-based exporter calls:
    # trace it into a ScriptModule first (same graph, same weights).
    if _is_graph_module(module):
        module = torch.jit.trace(module, (example,), check_trace=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                module,
                (example,),
                str(out_onnx),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=names,
                do_constant_folding=True,
            )
    except Exception as exc:  # unsupported ops, data-dependent control flow, ...
        raise ConversionError(f"{model}: torch.onnx.export (opset {OPSET}) failed: {_short(exc, 3)}") from exc


def _is_graph_module(module: Any) -> bool:
    import torch.fx

    return isinstance(module, torch.fx.GraphModule)


def _check_parity(onnx_path: Path, example: np.ndarray, expected: list[np.ndarray], model: str | Path) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example})
    if len(got) != len(expected):
        raise ConversionError(f"{model}: ONNX export has {len(got)} outputs, torch gives {len(expected)}")
    worst = 0.0
    for index, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape:
            raise ConversionError(f"{model}: ONNX output {index} has shape {list(g.shape)}, torch {list(e.shape)}")
        diff = float(np.abs(g.astype(np.float64) - e).max()) if e.size else 0.0
        scale = max(1.0, float(np.abs(e).max()) if e.size else 1.0)
        if diff > _RTOL * scale:
            raise ConversionError(f"{model}: ONNX export differs from torch on output {index}: max abs diff {diff:.3g}")
        worst = max(worst, diff)
    return worst


def onnx_name(model: str | Path, checkpoint: Path | None = None) -> str:
    """File name of the exported ONNX: after the checkpoint ('detector.pt' -> 'detector.onnx'), else the model."""
    if checkpoint is not None:
        return f"{Path(checkpoint).stem}.onnx"
    if is_factory_spec(model):
        return f"{str(model).partition(':')[0].rsplit('.', 1)[-1]}.onnx"
    return f"{Path(model).stem}.onnx"


def record_export(artifact: Any, exported: TorchExport) -> Any:
    """Add where the ONNX came from to the artifact's manifest (notes, torch version)."""
    from edgetally.artifact import Artifact

    manifest = artifact.manifest.model_copy(
        update={
            "notes": [exported.note(), *artifact.manifest.notes],
            "tools": {**artifact.manifest.tools, "torch": exported.torch_version},
        }
    )
    updated = Artifact(artifact.directory, manifest)
    updated.save()
    return Artifact.load(artifact.directory)
