"""SiLU replacement, the layer-wise refit and the distillation loop, on a tiny model (seconds).

The YOLOX-nano figures (accuracy before/after, time) come from benchmarks/distill_bench.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
if importlib.util.find_spec("onnx2torch") is None:
    pytest.skip("onnx2torch is not installed (scripts/test.sh installs it)", allow_module_level=True)

import onnx
import torch

from edgetally.converters import distill
from edgetally.converters.accuracy.calibration import CalibrationSet
from edgetally.converters.accuracy.evaluate import EvalImage
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.graph.activations import ONNX_OPS, largest_maps, replace_silu, silu_pairs, silu_sizes
from edgetally.converters.refit import conv_outputs, refit
from edgetally.errors import UsageError
from tests.tiny_models import images, run, tiny_detector

# One thread, as the converter sets it: on a shared 2-core machine torch's default OpenMP threads spin
# against each other (a tiny forward pass measured 0.4 s with 2 threads, 1.5 ms with 1).
torch.set_num_threads(1)


@pytest.fixture()
def teacher(tmp_path: Path) -> Path:
    return tiny_detector(tmp_path / "teacher.onnx")


def _student(teacher: Path, activation: str, directory: Path) -> tuple[Path, list[str]]:
    model, names = replace_silu(onnx.load(str(teacher)), ONNX_OPS[activation])
    path = directory / f"{activation}.onnx"
    onnx.save(model, str(path))
    return path, names


def _error(a: np.ndarray, b: np.ndarray) -> float:
    """Relative squared error of the logits (the model ends in a sigmoid, which squashes differences)."""
    logit = lambda p: np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))  # noqa: E731
    return float(((logit(a) - logit(b)) ** 2).sum() / (logit(b) ** 2).sum())


@pytest.mark.parametrize("activation", ["relu", "hardswish"])
def test_silu_becomes_one_node_keeping_every_name(teacher: Path, tmp_path: Path, activation: str) -> None:
    original = onnx.load(str(teacher))
    assert len(silu_pairs(original)) == 2
    student, names = _student(teacher, activation, tmp_path)
    model = onnx.load(str(student))
    assert names == ["silu1", "silu2"] and not silu_pairs(model)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert ops["silu1"] == ops["silu2"] == ONNX_OPS[activation]
    assert "sig1" not in ops and [i.name for i in model.graph.initializer] == [
        i.name for i in original.graph.initializer
    ]
    x = images(2)
    assert run(student, x).shape == run(teacher, x).shape and _error(run(student, x), run(teacher, x)) > 0


@pytest.mark.parametrize("activation", ["relu", "hardswish"])
def test_refit_brings_the_student_close_to_the_teacher(teacher: Path, tmp_path: Path, activation: str) -> None:
    student_path, _ = _student(teacher, activation, tmp_path)
    x = images(8)
    before = _error(run(student_path, x), run(teacher, x))
    t_module, s_module = distill._module(teacher).eval(), distill._module(student_path).eval()
    batch = [torch.from_numpy(img[None]) for img in x]
    residuals = refit(s_module, conv_outputs(t_module, batch), batch)
    assert set(residuals) == {"conv1", "conv2", "head"}
    assert residuals["conv1"] < 1e-4  # same input as the teacher: the teacher's own weights solve it
    distill.write_back(s_module, student_path, tmp_path / "refit.onnx")
    after = _error(run(tmp_path / "refit.onnx", x), run(teacher, x))
    # ReLU drops SiLU's negative part: a mean shift the next layer's refit absorbs; HardSwish is close to SiLU
    # already, and what differs is curvature no linear refit removes on a 3-layer model
    assert after < {"relu": 0.5, "hardswish": 0.95}[activation] * before, (before, after)


def test_distillation_lowers_the_loss_within_its_time_budget(teacher: Path, tmp_path: Path) -> None:
    student_path, taps = _student(teacher, "relu", tmp_path)
    t_module, s_module = distill._module(teacher).eval(), distill._module(student_path).eval()
    x = images(16)
    config = distill.DistillConfig("relu", budget_s=3.0, learning_rate=3e-3)
    ticks: list[float] = []
    training = distill.TrainingImages(x, np.zeros(len(x), int))
    stats = distill.distil(
        t_module, s_module, taps, training, config, 3.0, lambda elapsed, _loss: ticks.append(elapsed)
    )
    assert stats["steps"] > 20 and 2.5 <= stats["distill_seconds"] < 5.0 and ticks == sorted(ticks)
    assert stats["loss_last"] < stats["loss_first"]
    distill.write_back(s_module, student_path, tmp_path / "trained.onnx")
    with torch.no_grad():  # the ONNX written back computes what the trained torch module computes
        expected = s_module(torch.from_numpy(x[:1])).numpy()
    np.testing.assert_allclose(run(tmp_path / "trained.onnx", x[:1]), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "learning_rate,gains",
    [
        (3e-3, True),  # the steps fit the held-out images too: the last good weights are kept
        (3.0, False),  # steps that wreck the student: its weights from before the first step come back
    ],
)
def test_distillation_keeps_the_weights_that_score_best_on_held_out_images(
    teacher: Path, tmp_path: Path, learning_rate: float, gains: bool
) -> None:
    student_path, taps = _student(teacher, "relu", tmp_path)
    t_module, s_module = distill._module(teacher).eval(), distill._module(student_path).eval()
    x = images(20)
    training, validation = distill.TrainingImages(x, np.zeros(len(x), int)).held_out(5)
    assert len(validation.tensors) == 4 and len(training.tensors) == 16
    with torch.no_grad():
        start = s_module(torch.from_numpy(x[:2])).numpy()
    config = distill.DistillConfig("relu", budget_s=2.0, learning_rate=learning_rate)
    stats = distill.distil(t_module, s_module, taps, training, config, 2.0, validation=validation)
    history = stats["validation_loss"]
    assert len(history) >= 3 and stats["validation_images"] == 4
    assert stats["kept_validation_loss"] == min(history)
    assert (stats["kept_steps"] > 0) is gains
    with torch.no_grad():
        end = s_module(torch.from_numpy(x[:2])).numpy()
    if gains:
        assert stats["kept_validation_loss"] < history[0]
    else:  # nothing was better than the refit: exactly its weights
        assert max(history[1:]) > history[0]
        np.testing.assert_array_equal(end, start)


def _recorder(into: list[float]):
    return lambda done, _loss: into.append(done)


def test_a_step_count_repeats_a_distillation_exactly(teacher: Path, tmp_path: Path) -> None:
    """--distill-steps: the same steps, learning rates, held-out checks and weights on every run, however
    long each step takes (a time budget runs a different number of steps each time)."""
    student_path, taps = _student(teacher, "relu", tmp_path)
    x = images(20)
    training, validation = distill.TrainingImages(x, np.zeros(len(x), int)).held_out(5)
    config = distill.DistillConfig("relu", budget_s=0.0, learning_rate=3e-3, steps=12)
    runs = []
    for _ in range(2):
        t_module, s_module = distill._module(teacher).eval(), distill._module(student_path).eval()
        ticks: list[float] = []
        stats = distill.distil(t_module, s_module, taps, training, config, 0.0, _recorder(ticks), validation)
        runs.append((stats, {k: v.detach().clone() for k, v in s_module.state_dict().items()}))
        assert stats["steps"] == 12 and ticks == list(range(1, 13))  # the progress bar counts steps
    (first, weights), (second, again) = runs
    assert first["validation_steps"] == second["validation_steps"] and len(first["validation_steps"]) >= 3
    assert first["validation_loss"] == second["validation_loss"] and first["kept_steps"] == second["kept_steps"]
    assert weights.keys() == again.keys()
    for name, value in weights.items():
        torch.testing.assert_close(again[name], value, rtol=0, atol=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU: the option is usable here")
def test_distill_device_cuda_without_a_gpu_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgetally.cli import main

    model = tiny_detector(tmp_path / "tiny.onnx")
    args = [str(model), "--decoder", "yolox", "--input-size", "32", "--precision", "int8", "--out", str(tmp_path / "o")]
    assert main(["convert", *args, "--activation", "relu", "--distill-device", "cuda"]) == 2
    assert "sees no CUDA GPU here; drop the option to distil on the CPU" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch on this machine")
def test_distillation_steps_run_on_a_cuda_gpu(teacher: Path, tmp_path: Path) -> None:
    """--distill-device cuda: the steps and the held-out checks on the GPU, the student handed back on the CPU."""
    student_path, taps = _student(teacher, "relu", tmp_path)
    x = images(20)
    training, validation = distill.TrainingImages(x, np.zeros(len(x), int)).held_out(5)
    config = distill.DistillConfig("relu", budget_s=0.0, learning_rate=3e-3, steps=12, device="cuda")
    t_module, s_module = distill._module(teacher).eval(), distill._module(student_path).eval()
    stats = distill.distil(t_module, s_module, taps, training, config, 0.0, None, validation)
    assert stats["steps"] == 12 and stats["kept_validation_loss"] <= stats["validation_loss"][0]
    assert {p.device.type for p in s_module.parameters()} == {"cpu"} == {p.device.type for p in t_module.parameters()}


@pytest.mark.parametrize(
    "sources,every,held",
    [
        ([0] * 16, 8, [4, 12]),  # every 8th, from the middle of each stride
        ([0] * 8 + [1] * 8, 4, [2, 6, 10, 14]),  # each source gives its own share
        ([0] * 16 + [1] * 3, 8, [4, 12]),  # a source too short for a stride gives nothing
    ],
)
def test_held_out_images_come_from_every_source(sources: list[int], every: int, held: list[int]) -> None:
    tensors = np.arange(len(sources), dtype=np.float32)[:, None]
    training, validation = distill.TrainingImages(tensors, np.array(sources)).held_out(every)
    assert validation.tensors[:, 0].tolist() == held
    assert sorted(training.tensors[:, 0].tolist() + held) == list(range(len(sources)))
    assert validation.source.tolist() == [sources[i] for i in held]


def test_schedule_warms_up_then_decays_to_zero() -> None:
    values = [distill._schedule(p) for p in (0.0, distill.WARMUP / 2, distill.WARMUP, 0.5, 1.0)]
    assert values[0] == 0.0 and values[1] == pytest.approx(0.5) and values[2] == pytest.approx(1.0)
    assert 0.4 < values[3] < 0.6 and values[4] == pytest.approx(0.0, abs=1e-9)


def _calibration(tensors: np.ndarray, prefix: str) -> CalibrationSet:
    names = tuple(f"{prefix}{i}" for i in range(len(tensors)))
    return CalibrationSet(tensors, names, names, "test")


def test_training_images_never_include_what_a_fold_evaluates(tmp_path: Path) -> None:
    from edgetally.artifact import InputSpec

    x = images(12)
    fold_a = Fold(_calibration(x[:8], "h"), [EvalImage(Path("e"), np.zeros((4, 4, 3), np.uint8), None, "h3")])
    fold_b = Fold(_calibration(x[4:], "g"), [EvalImage(Path("e"), np.zeros((4, 4, 3), np.uint8), None, "g0")])
    training, info = distill.training_tensors([fold_a, fold_b], [], InputSpec(name="images", shape=[1, 3, 32, 32]))
    assert info["images"] == len(training.tensors) == 14 and info["excluded_evaluated"]  # 8 + 8, minus h3 and g0
    assert set(training.source) == {0}
    everything = [EvalImage(Path("e"), np.zeros((4, 4, 3), np.uint8), None, f"h{i}") for i in range(8)]
    with pytest.raises(UsageError, match="no gate fold evaluates on; found 0: give --distill-images"):
        distill.training_tensors(
            [Fold(_calibration(x[:8], "h"), everything)], [], InputSpec(name="images", shape=[1, 3, 32, 32])
        )


def _pyramid(path: Path) -> Path:
    """Conv+SiLU at 32x32 (8 channels), 16x16 (8) and 8x8 (16): 8192 + 2048 + 1024 SiLU elements."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shapes = {"w1": (8, 3, 3, 3), "w2": (8, 8, 3, 3), "w3": (16, 8, 3, 3)}
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, s).astype(np.float32), n) for n, s in shapes.items()]
    nodes, x = [], "images"
    for i, stride in ((1, 1), (2, 2), (3, 2)):
        nodes += [
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4, strides=[stride] * 2),
            helper.make_node("Sigmoid", [f"c{i}"], [f"s{i}"], name=f"sig{i}"),
            helper.make_node("Mul", [f"c{i}", f"s{i}"], [f"a{i}"], name=f"silu{i}"),
        ]
        x = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "pyramid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 16, 8, 8])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize(
    ("share", "replaced"),
    [
        (1.0, {"silu1", "silu2", "silu3"}),
        (0.9, {"silu1", "silu2"}),  # 32x32 alone holds 73 % of the elements
        (0.72, {"silu1"}),
        (0.5, {"silu1"}),
        (0.01, {"silu1"}),  # whole levels: the largest map is replaced entirely
    ],
)
def test_share_replaces_the_largest_maps_first(tmp_path: Path, share: float, replaced: set[str]) -> None:
    model = onnx.load(str(_pyramid(tmp_path / "pyramid.onnx")))
    sizes = silu_sizes(model)
    assert sizes == {"silu1": (32, 32, 8192), "silu2": (16, 16, 2048), "silu3": (8, 8, 1024)}
    assert largest_maps(sizes, share) == replaced
    student, names = replace_silu(model, "HardSwish", only=largest_maps(sizes, share))
    assert set(names) == replaced
    assert {n.name for n in student.graph.node if n.op_type == "Mul"} == {"silu1", "silu2", "silu3"} - replaced


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_share_outside_zero_one_is_a_usage_error(share: float) -> None:
    with pytest.raises(UsageError, match="--activation-share must be in"):
        largest_maps({"silu1": (2, 2, 4)}, share)


def test_dynamic_shapes_cannot_be_shared(tmp_path: Path) -> None:
    model = onnx.load(str(_pyramid(tmp_path / "pyramid.onnx")))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(UsageError, match="not a static NCHW shape: use --activation-share 1"):
        silu_sizes(model)


def test_every_source_weighs_the_same_however_many_images_it_has() -> None:
    """64 calibration images and 256 frames of one video: the refit takes as many of each, and the
    distillation batches draw each source about half the time."""
    source = np.array([0] * 64 + [1] * 256)
    training = distill.TrainingImages(np.arange(len(source), dtype=np.float32)[:, None], source)
    picked = training.balanced(48)
    assert len(picked) == 48 and (source[picked] == 0).sum() == 24 and len(set(picked)) == 48
    assert training.balanced(200) == sorted(set(training.balanced(200)))
    assert (source[training.balanced(200)] == 0).sum() == 64  # a short source gives all it has
    assert len(training.balanced(200)) == 200
    rng = np.random.default_rng(0)
    draws = np.array([int(training.sample(rng)[0]) for _ in range(2000)])
    assert 0.45 < (draws < 64).mean() < 0.55


@pytest.mark.parametrize("recovery", [["--distill-budget", "3s"], ["--distill-steps", "6"]])
def test_convert_with_activation_replacement_end_to_end(tmp_path: Path, recovery: list[str]) -> None:
    """The CLI wiring: rewrite, refit, distil within the budget (or the step count), quantise the student, gate
    against the ORIGINAL FP32 model, record it all in report.json. A tiny model read as a one-class YOLOX head
    with stride 1."""
    import json

    import cv2
    from click.testing import CliRunner

    from edgetally.cli.convert import convert

    model = tiny_detector(tmp_path / "tiny.onnx")
    (tmp_path / "labels.txt").write_text("thing\n")
    folder, labels = tmp_path / "imgs", tmp_path / "lbl"
    folder.mkdir()
    labels.mkdir()
    for index, image in enumerate(images(24, seed=3)):
        cv2.imwrite(str(folder / f"{index:02d}.png"), image.transpose(1, 2, 0).astype(np.uint8))
        (labels / f"{index:02d}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    args = [
        str(model),
        "--decoder",
        "yolox",
        "--input-size",
        "32",
        "--labels",
        str(tmp_path / "labels.txt"),
        "--strides",
        "1",
        "--precision",
        "int8",
        "--calib",
        str(folder),
        "--calib-count",
        "8",
        "--eval-labels",
        str(labels),
        "--folds",
        "1",
        "--activation",
        "relu",
        *recovery,
        "--threads",
        "1",
        "--latency-runs",
        "0",
        "--max-map-drop",
        "100",
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(convert, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    distilled = report["distillation"]
    assert distilled["activation"] == "relu" and distilled["replaced"] == 2 and distilled["steps"] > 0
    assert distilled["images"] == 8 and {"before", "after_refit", "after"} <= set(distilled)
    assert distilled["device"] == "cpu"
    if recovery[0] == "--distill-steps":
        assert distilled["steps"] == distilled["steps_given"] == 6 and distilled["budget_s"] is None
    else:
        assert distilled["seconds"] >= 3.0 and distilled["steps_given"] is None and distilled["budget_s"] == 3.0
    assert "activations relu" in result.output and f"--distill-steps {distilled['steps']} repeats" in result.output
    # the first candidate passes this loose budget: the refit student is gated only when it fails
    assert report["quantised_model"] == ("distilled" if distilled.get("kept_steps") else "refit")
    assert {a.get("source") for a in report["attempts"]} == {report["quantised_model"]}
    assert f"on the {report['quantised_model']} model" in result.output
    quantised = onnx.load(str(tmp_path / "out" / "model.int8.onnx"))
    assert "Relu" in {n.op_type for n in quantised.graph.node} or not silu_pairs(quantised)
    reference = onnx.load(str(tmp_path / "out" / "reference" / "tiny.onnx"))
    assert len(silu_pairs(reference)) == 2  # the gate's baseline is the original SiLU model


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--activation-share", "0.5"], "--activation-share applies only with --activation"),
        (["--distill-budget", "10s"], "--distill-budget applies only with --activation"),
        (["--distill-steps", "50"], "--distill-steps applies only with --activation"),
        (["--distill-device", "cuda"], "--distill-device applies only with --activation"),
        (["--activation", "relu", "--distill-device", "tpu"], "'tpu' is not one of 'cpu', 'cuda'"),
        (["--activation", "relu", "--distill-budget", "10s", "--distill-steps", "50"], "not both"),
        (["--activation", "relu", "--distill-steps", "0"], "x>=1"),
        (["--activation", "relu", "--activation-share", "0"], "0<x<=1"),
        (["--activation", "relu", "--activation-share", "half"], "is not a valid float"),
    ],
)
def test_activation_options_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from edgetally.cli import main

    model = tiny_detector(tmp_path / "tiny.onnx")
    args = [str(model), "--decoder", "yolox", "--input-size", "32", "--precision", "int8", "--out", str(tmp_path / "o")]
    assert main(["convert", *args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
