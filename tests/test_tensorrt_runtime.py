"""The tensorrt runtime: engine cache keys and paths, first-start build, rebuild, the manifest contract.

TensorRT and an NVIDIA GPU are not available on CI: the runtime's own logic runs against a fake
backend (tests/trt_fake.py: 'engines' are ONNX run by onnxruntime). The last test builds a real
engine and skips with the reason where TensorRT or a GPU is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx
from onnx import TensorProto, helper, numpy_helper

from edgetally.artifact import Artifact, DecoderSpec, InputSpec, Manifest, OutputSpec, sha256_file
from edgetally.errors import ArtifactError, RuntimeLoadError
from edgetally.runtimes import load_runtime
from edgetally.runtimes.tensorrt import (
    ENV_CACHE,
    BuildSettings,
    EngineCache,
    TensorRtRuntime,
    default_cache_dir,
    engine_key,
)
from tests.trt_fake import FakeBackend


def _tiny_artifact(directory: Path, precision: str = "int8", scale: float = 2.0, output: str = "output") -> Artifact:
    """A one-Conv ONNX (1x3x8x8 -> 1x2x8x8, weights ``scale``) packaged as a tensorrt artifact."""
    directory.mkdir(parents=True, exist_ok=True)
    weight = numpy_helper.from_array(np.full((2, 3, 1, 1), scale, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], [output], name="conv")],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 2, 8, 8])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what onnx writes by default can be newer than the onnxruntime beside it reads
    onnx.save(model, str(directory / "model.onnx"))
    digest = sha256_file(directory / "model.onnx")
    manifest = Manifest(
        format="onnx-tensorrt",
        runtime="tensorrt",
        model_file="model.onnx",
        precision=precision,
        input=InputSpec(name="images", shape=[1, 3, 8, 8]),
        outputs=[OutputSpec(name="output", shape=[1, 2, 8, 8])],
        decoder=DecoderSpec(family="yolox"),
        labels=["a"],
        source_model_sha256=digest,
        model_sha256=digest,
    )
    artifact = Artifact(directory, manifest)
    artifact.save()
    return Artifact.load(directory)


@pytest.fixture()
def artifact(tmp_path: Path) -> Artifact:
    return _tiny_artifact(tmp_path / "art")


def test_first_start_builds_and_caches_then_loads_from_the_cache(artifact: Artifact, tmp_path: Path) -> None:
    backend, cache = FakeBackend(), EngineCache(tmp_path / "cache")
    runtime = TensorRtRuntime(artifact, backend, cache)
    x = np.ones((1, 3, 8, 8), np.float32)
    np.testing.assert_allclose(runtime.infer(x)[0], np.full((1, 2, 8, 8), 6.0))  # 3 channels x weight 2
    key = engine_key(artifact.manifest.model_sha256, BuildSettings.for_precision("int8"), backend)
    assert cache.engine_path(key).is_file() and cache.timing_path(backend).is_file()
    assert [s.flags for s, _ in backend.builds] == [("INT8", "FP16")]
    runtime.close()
    TensorRtRuntime(artifact, backend, cache).close()
    assert len(backend.builds) == 1 and backend.opened == 2  # the second start built nothing


def test_timing_cache_is_handed_to_the_next_build(tmp_path: Path) -> None:
    backend, cache = FakeBackend(), EngineCache(tmp_path / "cache")
    TensorRtRuntime(_tiny_artifact(tmp_path / "a", scale=1.0), backend, cache).close()
    TensorRtRuntime(_tiny_artifact(tmp_path / "b", scale=3.0), backend, cache).close()
    assert backend.builds[0][1] is None
    assert backend.builds[1][1] == b"timings for build 1\n"
    assert cache.timing_path(backend).read_bytes() == b"timings for build 1\ntimings for build 2\n"


@pytest.mark.parametrize("change", ["model", "precision", "tensorrt", "gpu"])
def test_engine_key_changes_with_whatever_invalidates_an_engine(change: str) -> None:
    backend, settings, model = FakeBackend(), BuildSettings.for_precision("int8"), "ab" * 32
    base = engine_key(model, settings, backend)
    assert engine_key(model, settings, FakeBackend()) == base  # deterministic
    changed = {
        "model": lambda: engine_key("cd" * 32, settings, backend),
        "precision": lambda: engine_key(model, BuildSettings.for_precision("fp16"), backend),
        "tensorrt": lambda: engine_key(model, settings, FakeBackend(version="8.6.2")),
        "gpu": lambda: engine_key(model, settings, FakeBackend(device="sm87-16sm")),
    }[change]()
    assert changed != base


@pytest.mark.parametrize(("precision", "flags"), [("int8", ("INT8", "FP16")), ("fp16", ("FP16",)), ("fp32", ())])
def test_precision_selects_the_builder_flags(tmp_path: Path, precision: str, flags: tuple[str, ...]) -> None:
    backend = FakeBackend()
    TensorRtRuntime(_tiny_artifact(tmp_path / "a", precision), backend, EngineCache(tmp_path / "c")).close()
    assert backend.builds[0][0].flags == flags


def test_an_engine_that_does_not_load_is_rebuilt(artifact: Artifact, tmp_path: Path) -> None:
    backend, cache = FakeBackend(), EngineCache(tmp_path / "cache")
    TensorRtRuntime(artifact, backend, cache).close()
    key = engine_key(artifact.manifest.model_sha256, BuildSettings.for_precision("int8"), backend)
    cache.engine_path(key).write_bytes(b"truncated by a power cut")
    runtime = TensorRtRuntime(artifact, backend, cache)
    assert len(backend.builds) == 2 and runtime.infer(np.zeros((1, 3, 8, 8), np.float32))[0].shape == (1, 2, 8, 8)
    assert cache.engine_path(key).read_bytes().startswith(b"FAKE-TRT-ENGINE")


def test_an_unwritable_cache_still_runs(artifact: Artifact, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        cache_dir = tmp_path / "file-not-dir"
        cache_dir.write_text("x")  # root ignores permissions: a file where the directory should be fails for all
    else:
        cache_dir = tmp_path / "ro"
        cache_dir.mkdir(mode=0o500)
    runtime = TensorRtRuntime(artifact, FakeBackend(), EngineCache(cache_dir))
    assert runtime.infer(np.ones((1, 3, 8, 8), np.float32))[0].shape == (1, 2, 8, 8)


def test_manifest_outputs_must_exist_in_the_engine(tmp_path: Path) -> None:
    artifact = _tiny_artifact(tmp_path / "a", output="logits")  # the model names its output differently
    with pytest.raises(ArtifactError, match=r"manifest output\(s\) \['output'\] are not in the model"):
        TensorRtRuntime(artifact, FakeBackend(), EngineCache(tmp_path / "c"))


def test_cache_directory_comes_from_the_environment() -> None:
    assert default_cache_dir({ENV_CACHE: "/var/cache/edgetally/tensorrt"}) == Path("/var/cache/edgetally/tensorrt")
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/edgetally/tensorrt")
    assert default_cache_dir({}).parts[-2:] == ("edgetally", "tensorrt")


def _has_cuda_gpu() -> str | None:
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvhost-ctrl-gpu").exists():
        return "no NVIDIA GPU on this machine"
    return None


def _has_tensorrt_gpu() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not importable (JetPack's python3-libnvinfer)"
    return _has_cuda_gpu()


def test_without_tensorrt_the_registry_says_how_to_get_it(artifact: Artifact) -> None:
    if _has_tensorrt_gpu() is None:
        pytest.skip("tensorrt is installed here")
    with pytest.raises(RuntimeLoadError, match="apt install python3-libnvinfer"):
        load_runtime(artifact)


def test_cuda_layer_moves_bytes_through_a_real_gpu() -> None:
    """The ctypes CUDA calls the TensorRT backend runs on (no TensorRT needed, only libcudart and a GPU)."""
    reason = _has_cuda_gpu()
    if reason:
        pytest.skip(reason)
    from edgetally.runtimes.tensorrt_backend import Cuda

    cuda = Cuda()
    assert cuda.attribute(75) >= 5 and cuda.attribute(16) > 0  # compute capability major, multiprocessors
    host = np.random.default_rng(1).random((3, 640, 640), dtype=np.float32)
    back = np.zeros_like(host)
    stream, device = cuda.stream(), cuda.malloc(host.nbytes)
    try:
        cuda.copy(device, host.ctypes.data, host.nbytes, 1, stream)  # 1: host to device, 2: back
        cuda.copy(back.ctypes.data, device, back.nbytes, 2, stream)
        cuda.sync(stream)
    finally:
        cuda.free(device)
        cuda.destroy(stream)
    np.testing.assert_array_equal(back, host)
    with pytest.raises(RuntimeLoadError, match="cudaMalloc failed"):
        cuda.malloc(1 << 62)


def test_real_tensorrt_engine_matches_onnxruntime(artifact: Artifact, tmp_path: Path) -> None:
    reason = _has_tensorrt_gpu()
    if reason:
        pytest.skip(reason)
    from edgetally.runtimes.tensorrt_backend import TrtBackend

    fp32 = _tiny_artifact(tmp_path / "fp32", precision="fp32")
    runtime = TensorRtRuntime(fp32, TrtBackend(), EngineCache(tmp_path / "cache"))
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(runtime.infer(x)[0], 2.0 * x.sum(axis=1, keepdims=True).repeat(2, axis=1), rtol=1e-3)
