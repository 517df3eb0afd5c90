"""`edge convert` with PyTorch inputs: module:factory + --checkpoint, TorchScript, torch.export .pt2.

Each kind is exported to ONNX and packaged; the artifact's ONNX must compute what the torch model
computes on a random tensor. A tiny YOLOX-layout model written into tmp_path keeps every export
under a couple of seconds; the demo detector (training/demo_model.py + models/demo/detector.pt) is
exported once too when it is present.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgetally.artifact import Artifact  # noqa: E402
from edgetally.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 64  # strides 8/16/32 -> 64 + 16 + 4 = 84 anchors

TINY_MODULE = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        """YOLOX raw-head layout [1, A, 5 + nc] from three strides, sigmoid on obj/cls."""

        def __init__(self, num_classes=2, width=8):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 8, 8)
            self.down = nn.Conv2d(width, width, 3, 2, 1)
            self.head = nn.Conv2d(width, 5 + num_classes, 1)

        def forward(self, x):
            p3 = torch.relu(self.stem(x / 255.0))
            p4 = torch.relu(self.down(p3))
            p5 = torch.relu(self.down(p4))
            flat = torch.cat([self.head(p).flatten(2) for p in (p3, p4, p5)], dim=2).permute(0, 2, 1)
            return torch.cat([flat[..., :4], torch.sigmoid(flat[..., 4:])], dim=2)

    def build():
        return Tiny()

    def build_wide():
        return Tiny(width=12)

    def not_a_module():
        return 42

    NOT_CALLABLE = 3
''')


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the current directory, holding tinynet.py (imported like `python -m` would)."""
    (tmp_path / "tinynet.py").write_text(TINY_MODULE)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("tinynet", None)


def _tiny(workdir: Path):
    sys.path.insert(0, str(workdir))
    try:
        import tinynet
    finally:
        sys.path.remove(str(workdir))
    torch.manual_seed(0)
    model = tinynet.build().eval()
    with torch.no_grad():  # non-trivial biases, so a wrong weight load cannot pass by accident
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _save_kind(kind: str, model, workdir: Path) -> list[str]:
    """Write ``model`` as ``kind``; -> the MODEL argument(s) for `edge convert`."""
    example = torch.rand(1, 3, SIZE, SIZE) * 255
    if kind == "factory":
        torch.save(model.state_dict(), workdir / "tiny.pt")
        return ["tinynet:build", "--checkpoint", "tiny.pt"]
    if kind == "torchscript":
        torch.jit.save(torch.jit.trace(model, example), str(workdir / "tiny_ts.pt"))
        return ["tiny_ts.pt"]
    torch.export.save(torch.export.export(model, (example,)), str(workdir / "tiny.pt2"))
    return ["tiny.pt2"]


def _onnx_outputs(artifact: Artifact, tensor: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(artifact.model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {artifact.manifest.input.name: tensor})


def _convert(args: list[str], out: str = "art", size: str = str(SIZE), labels: str = "labels.txt") -> int:
    return main(["convert", *args, "--decoder", "yolox", "--input-size", size, "--labels", labels, "--out", out])


@pytest.mark.parametrize(
    ("kind", "model_file", "note"),
    [
        ("factory", "tiny.onnx", "exported from PyTorch factory tinynet:build"),
        ("torchscript", "tiny_ts.onnx", "exported from PyTorch torchscript tiny_ts.pt"),
        ("export", "tiny.onnx", "exported from PyTorch export tiny.pt2"),
    ],
)
def test_each_torch_input_kind_gives_an_artifact_equal_to_torch(
    workdir: Path, kind: str, model_file: str, note: str
) -> None:
    model = _tiny(workdir)
    args = _save_kind(kind, model, workdir)
    assert _convert(args) == 0
    artifact = Artifact.load(workdir / "art")
    m = artifact.manifest
    assert (m.model_file, m.format, m.precision) == (model_file, "onnx", "fp32")
    assert (m.input.name, m.input.shape) == ("images", [1, 3, SIZE, SIZE])
    assert [(o.name, o.shape) for o in m.outputs] == [("output", [1, 84, 7])]
    assert m.notes[0].startswith(note) and m.tools["torch"] == torch.__version__
    tensor = np.random.default_rng(1).uniform(0, 255, (1, 3, SIZE, SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(tensor)).numpy()
    (got,) = _onnx_outputs(artifact, tensor)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.5  # a real signal was compared, not zeros


def test_demo_detector_factory_and_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = REPO / "models" / "demo" / "detector.pt"
    if not checkpoint.is_file():
        pytest.skip(f"{checkpoint} not found")
    from training.demo_model import INPUT_HW, load_detector

    monkeypatch.chdir(REPO)  # module:factory resolves from the current directory, like `python -m`
    out = tmp_path / "demo"
    size = f"{INPUT_HW[0]}x{INPUT_HW[1]}"
    assert (
        _convert(
            ["training.demo_model:build_model", "--checkpoint", str(checkpoint)],
            str(out),
            size,
            str(REPO / "models" / "demo" / "labels.txt"),
        )
        == 0
    )
    artifact = Artifact.load(out)
    assert artifact.manifest.model_file == "detector.onnx"
    assert artifact.manifest.labels == ["car", "truck", "bus", "bicycle"]
    tensor = np.random.default_rng(2).uniform(0, 255, (1, 3, *INPUT_HW)).astype(np.float32)
    with torch.no_grad():
        expected = load_detector(str(checkpoint))(torch.from_numpy(tensor)).numpy()
    (got,) = _onnx_outputs(artifact, tensor)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


class _Pickled(torch.nn.Module):
    """Saved whole (torch.save(model)): loading it needs this class's code, so weights_only refuses it."""

    def forward(self, x):
        return x


def _error_cases(workdir: Path) -> None:
    torch.save(_tiny(workdir).state_dict(), workdir / "tiny.pt")
    torch.save({"model": _Pickled()}, workdir / "pickled.pt")
    torch.save([1, 2, 3], workdir / "list.pt")
    (workdir / "garbage.pt").write_bytes(b"not a checkpoint at all")
    (workdir / "garbage.pt2").write_bytes(b"PK\x03\x04 not an exported program")
    import tinynet

    torch.save(tinynet.build_wide().state_dict(), workdir / "wide.pt")


@pytest.mark.parametrize(
    ("args", "size", "code", "message"),
    [
        (["nosuchmodule_xyz:build", "--checkpoint", "tiny.pt"], SIZE, 1, "cannot import module 'nosuchmodule_xyz'"),
        (["tinynet:missing", "--checkpoint", "tiny.pt"], SIZE, 1, "module 'tinynet' has no attribute 'missing'"),
        (["tinynet:NOT_CALLABLE", "--checkpoint", "tiny.pt"], SIZE, 1, "'NOT_CALLABLE' is not callable"),
        (["tinynet:not_a_module", "--checkpoint", "tiny.pt"], SIZE, 1, "returned int, expected a torch.nn.Module"),
        (["tinynet:build"], SIZE, 1, "needs --checkpoint FILE"),
        (["tinynet:build", "--checkpoint", "absent.pt"], SIZE, 1, "absent.pt: no such file"),
        (
            ["tinynet:build", "--checkpoint", "pickled.pt"],
            SIZE,
            1,
            "not loadable with weights_only=True: it holds pickled code or objects (test_torch_input._Pickled)",
        ),
        (["tinynet:build", "--checkpoint", "list.pt"], SIZE, 1, "holds list, not a state_dict"),
        (["tinynet:build", "--checkpoint", "garbage.pt"], SIZE, 1, "not a torch checkpoint"),
        (
            ["tinynet:build", "--checkpoint", "wide.pt"],
            SIZE,
            1,
            "does not fit tinynet:build: Error(s) in loading state_dict",
        ),
        (
            ["tinynet:build", "--checkpoint", "tiny.pt"],
            4,
            1,
            "the model fails on a [1, 3, 4, 4] input (check --input-size)",
        ),
        (
            ["tinynet:build", "--checkpoint", "tiny.pt"],
            60,
            1,
            "has 69 anchors; the yolox decoder expects 84 for a 60x60 input",
        ),
        (["tiny.pt"], SIZE, 1, "a checkpoint (state_dict), not a TorchScript file: give the model's factory"),
        (["garbage.pt"], SIZE, 1, "not a TorchScript file"),
        (["garbage.pt2"], SIZE, 1, "garbage.pt2: not a torch.export program"),
        (["absent.pt2"], SIZE, 1, "absent.pt2: no such file"),
        (["labels.txt", "--checkpoint", "tiny.pt"], SIZE, 2, "--checkpoint applies to a PyTorch module:factory MODEL"),
    ],
)
def test_torch_input_errors_say_what_is_wrong(
    workdir: Path, capsys: pytest.CaptureFixture, args: list[str], size: int, code: int, message: str
) -> None:
    _error_cases(workdir)
    capsys.readouterr()
    assert _convert(args, size=str(size)) == code
    err = capsys.readouterr().err
    assert message in err, err
    assert not (workdir / "art").exists()  # nothing written when a check fails


def test_wrong_shape_in_checkpoint_names_the_tensor(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    _error_cases(workdir)
    capsys.readouterr()
    assert _convert(["tinynet:build", "--checkpoint", "wide.pt"]) == 1
    err = capsys.readouterr().err
    assert "size mismatch for stem.weight" in err or "stem.weight" in err, err
