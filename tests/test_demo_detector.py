"""The committed demo detector (models/demo): its files, its contract with the runner, its accuracy.

The accuracy check runs the ONNX through the runner's own stack (package -> Preprocessor ->
onnxruntime -> yolox decoder) on a held-out generated scene. The PyTorch check needs torch and
skips without it (a board never has torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetally.demo.scene import SceneConfig, render_scene

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "models" / "demo"
LABELS = ["car", "truck", "bus", "bicycle"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("onnx")
    from edgetally.converters.package import package_fp32

    out = tmp_path_factory.mktemp("demo_art")
    return package_fp32(
        DEMO / "detector.onnx", out / "art", "yolox", (192, 320), LABELS, decoder_options={"strides": [8, 16, 32]}
    )


def test_committed_files_are_small_and_complete() -> None:
    for name in ("detector.onnx", "detector.pt", "labels.txt", "train_log.txt"):
        assert (DEMO / name).is_file(), name
    assert (DEMO / "labels.txt").read_text().split() == LABELS
    assert (DEMO / "detector.onnx").stat().st_size < 2_000_000
    assert (DEMO / "detector.pt").stat().st_size < 2_000_000


def test_manifest_matches_the_yolox_contract(artifact) -> None:
    m = artifact.manifest
    assert m.input.shape == [1, 3, 192, 320] and m.input.color == "BGR" and m.input.pad_value == 114
    assert m.input.letterbox_align == "top-left"
    assert [o.shape for o in m.outputs] == [[1, 24 * 40 + 12 * 20 + 6 * 10, 5 + len(LABELS)]]


def test_detects_vehicles_on_a_held_out_scene(artifact, tmp_path: Path) -> None:
    from edgetally.converters.accuracy.evaluate import EvalImage, detect_all
    from edgetally.converters.accuracy.metrics import ImageBoxes, mean_average_precision
    from training.demo_data import read_frames

    video = tmp_path / "scene.mp4"
    truth = render_scene(SceneConfig(seconds=3, seed=9100), video)
    images = []
    for fb, frame in list(zip(truth.frames, read_frames(video)))[::3]:
        crowd = fb.visibility < 0.35
        images.append(
            EvalImage(
                tmp_path / str(fb.index), frame, ImageBoxes(fb.xyxy.astype(np.float64), fb.class_ids, crowd=crowd)
            )
        )
    result = mean_average_precision([im.truth for im in images], detect_all(artifact, images))
    assert result.map50 > 0.8, result.as_dict(LABELS)  # 0.94 on 300 frames of scenes 9001-9003


def test_pytorch_weights_match_the_onnx() -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from training.demo_model import load_detector

    model = load_detector(str(DEMO / "detector.pt"))  # weights_only=True inside
    x = np.random.default_rng(0).uniform(0, 255, size=(1, 3, 192, 320)).astype(np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(DEMO / "detector.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"images": x})[0]
    assert ours.shape == theirs.shape == (1, 1260, 9)
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=1e-3)
