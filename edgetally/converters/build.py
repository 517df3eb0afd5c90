"""FP32 artifact -> accuracy-gated INT8 (or FP16) artifact for one conversion target, with report.json.

Layout of the output directory::

    out/model.int8.onnx | model.int8.xml+.bin   the accepted model (model.fp16.* for FP16,
                                                model.fp32.* for an FP32 fallback)
    out/manifest.json                           the runner's contract
    out/report.json                             sizes, accuracy per fold, latency, speed verdict,
                                                provenance, every attempt
    out/reference/                              the FP32 artifact the gate compared against
                                                (so `edge verify out` / `edge bench` can re-check it later)

What is built for a target (builders, repair ladder, fallback) comes from the target registry
(edgetally.converters.targets); this module only runs the gate over the folds and writes the report.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgetally.artifact import REFERENCE_DIR, Artifact
from edgetally.converters.accuracy.folds import Fold
from edgetally.converters.accuracy.gate import Builder, GateConfig, GateResult, References, run_gate
from edgetally.converters.accuracy.strategy import Strategy
from edgetally.converters.derive import copy_reference, derive, tool_versions
from edgetally.converters.report import latency_table, model_bytes, speed_verdict, write_report
from edgetally.converters.targets import Target, check_precision, get_target
from edgetally.errors import ConversionError

SLOWER_NOTE = (
    "the INT8 model passed the accuracy gate but ran slower than FP32 here: FP32 shipped (profile speed_fallback)"
)


@dataclass(frozen=True)
class BuildOptions:
    """How ``build_int8`` runs besides the target and the folds."""

    strategies: Sequence[Strategy] | None = None  # None: the target's repair ladder
    fallback: bool = False  # ship FP32 when nothing passes
    speed_fallback: bool = False  # ship FP32 when the gated INT8 model is slower than it here
    speed_threads: int = 1  # the thread count whose latency ratio decides speed_fallback
    profile: str | None = None
    eval_info: dict | None = None
    latency_runs: int = 100
    precision: str = "int8"
    io_dtype: str = "float32"
    source: Artifact | None = None  # the FP32 model to quantise when it is not the reference (distilled)
    # Further FP32 models to quantise, in order, when no rung passes with ``source`` (label, model): the
    # distillation offers the refit student here, the same network before its gradient steps.
    alternatives: Sequence[tuple[str, Artifact]] = ()
    source_label: str = "source"  # names ``source`` in report.json's attempts and ``quantised_model``
    extra_report: dict | None = None  # merged into report.json (e.g. distillation)


def _builders(
    target: Target, source: Artifact, folds: Sequence[Fold], work: Path, options: BuildOptions
) -> Callable[[int], Builder]:
    """A builder per fold (each fold calibrates on its own images), made on first use and kept for every rung."""
    made: dict[int, Builder] = {}

    def builder_for(index: int) -> Builder:
        if index not in made:
            if options.precision == "fp16":
                made[index] = target.load("fp16")(source)
            else:
                made[index] = target.load("int8")(
                    source, folds[index].calibration, work / f"fold{index + 1}", options.io_dtype
                )
        return made[index]

    return builder_for


def _install(source: Path, out: Path, profile: str | None) -> Artifact:
    """Move the accepted attempt's files into ``out`` (next to reference/ and report.json); record the profile."""
    for item in source.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        shutil.move(str(item), str(target))
    artifact = Artifact.load(out)
    if profile is not None:
        artifact = Artifact(out, artifact.manifest.model_copy(update={"profile": profile}))
        artifact.save()
    return artifact


def _check(target: Target, folds: Sequence[Fold], reference: Artifact, options: BuildOptions) -> None:
    check_precision(target, options.precision)
    if options.precision == "int8" and any(f.calibration is None for f in folds):
        raise ConversionError("INT8 needs a calibration set")
    if reference.manifest.format != "onnx":
        raise ConversionError(
            f"{reference.directory}: {options.precision.upper()} conversion starts from an FP32 ONNX artifact"
        )


def build_int8(
    reference: Artifact,
    out: Path,
    target: Target | str,
    folds: Sequence[Fold],
    config: GateConfig = GateConfig(),
    options: BuildOptions = BuildOptions(),
    log: Callable[[str], None] = print,
) -> tuple[Artifact, dict]:
    """Quantise (``options.precision="fp16"``: halve) ``reference`` for ``target``; raise ConversionError if the gate
    fails on any fold (unless ``options.fallback``). ``options.source`` replaces the model that is quantised (a
    distilled copy) while the gate still compares with ``reference``."""
    target = get_target(target) if isinstance(target, str) else target
    _check(target, folds, reference, options)
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".attempts"
    ref = copy_reference(reference, out / REFERENCE_DIR)
    source = ref if options.source is None else copy_reference(options.source, work / "source")
    if options.strategies:
        strategies = options.strategies
    else:
        strategies = _fp16_ladder() if options.precision == "fp16" else target.load("repairs")
    result = _gate_sources(target, ref, source, folds, strategies, config, options, work, log)
    artifact = _install(result.artifact.directory, out, options.profile) if result.passed else None
    if artifact is None and options.fallback:
        artifact = _install(target.load("fallback")(ref, work / "fallback").directory, out, options.profile)
    report = _report(ref, artifact, result, folds, config, options, target, work)
    if artifact is not None and result.passed and ship_fp32_instead(report.get("speed", {}), options.speed_fallback):
        log(f"[speed] {report['speed']['statement']}: shipping FP32 (profile speed_fallback)")
        artifact = _install(fp32_instead(target, ref, artifact, work).directory, out, options.profile)
        report.update(
            {"shipped": "fp32 (INT8 slower here)", "model_file": artifact.manifest.model_file, "precision": "fp32"}
        )
    if artifact is not None and result.passed and target.finish and artifact.manifest.precision != "fp32":
        target.load("finish")(out, report, ref, folds, config)
    report["conversion_seconds"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(work, ignore_errors=True)
    path = write_report(out, report)
    if not result.passed and not options.fallback:
        best = result.best
        closest = f"best: {best.strategy.name}: {best.verdict.reason}" if best else "no strategy tried"
        pooled = best.verdict.metrics.get("folds", {}).get("pooled") if best else None
        if pooled:  # the worst fold decided; say how the same model did on every judged image at once
            lo, hi = pooled["ci95_points"]
            closest += (
                f"; over the {pooled['images']} images of its {pooled['folds']} folds pooled: drop "
                f"{pooled['map50_95_drop_points']:.2f} points (95 % interval {lo:.2f} to {hi:.2f})"
            )
        speed = ((report.get("closest") or {}).get("speed") or {}).get("statement")
        closest += f"; timed anyway: {speed}" if speed else ""
        raise ConversionError(
            f"{options.precision.upper()} failed the accuracy gate after {len(result.attempts)} "
            f"attempts ({closest}); see {path}. Use --fallback to ship FP32"
            + (", or calibrate on deployment frames." if options.precision == "int8" else ".")
        )
    return Artifact.load(out), report


def _gate_sources(
    target: Target,
    ref: Artifact,
    source: Artifact,
    folds: Sequence[Fold],
    strategies: Sequence[Strategy],
    config: GateConfig,
    options: BuildOptions,
    work: Path,
    log: Callable[[str], None],
) -> GateResult:
    """The whole ladder on ``source``, then on each of ``options.alternatives`` until one passes.

    Every attempt stays in the result, labelled with its source when that is not the reference; FP32 is
    evaluated once for all of them."""
    references = References(ref, folds, config)
    result = run_gate(_builders(target, source, folds, work, options), references, folds, strategies, config, work, log)
    if options.source is None and not options.alternatives:
        return result
    attempts = [dataclasses.replace(a, source=options.source_label) for a in result.attempts]
    for label, alternative in options.alternatives:
        if result.passed:
            break
        log(f"[gate] no rung passed; quantising the {label} model instead")
        model = copy_reference(alternative, work / f"source-{label}")
        result = run_gate(
            _builders(target, model, folds, work / label, options),
            references,
            folds,
            strategies,
            config,
            work / label,
            log,
        )
        attempts += [dataclasses.replace(a, source=label) for a in result.attempts]
    return GateResult(attempts, result.artifact)


def _fp16_ladder() -> tuple[Strategy, ...]:
    from edgetally.converters.targets.fp16 import FP16

    return (FP16,)


def ship_fp32_instead(speed: dict, speed_fallback: bool) -> bool:
    """A gated INT8 model that ran clearly slower than FP32 here gives way to FP32 when the profile says so."""
    return speed_fallback and bool(speed.get("slower"))


def fp32_instead(target: Target, ref: Artifact, int8: Artifact, work: Path) -> Artifact:
    """The target's FP32 model, shipped instead of a slower INT8 one; the INT8 model stays beside it for the record."""
    fp32 = target.load("fallback")(ref, work / "speed-fallback")
    for path in (int8.model_path, int8.model_path.with_suffix(".bin")):
        if path.is_file():
            shutil.copy2(path, fp32.directory / path.name)
    return derive(
        fp32,
        fp32.directory,
        fp32.manifest.model_file,
        format=fp32.manifest.format,
        runtime=fp32.manifest.runtime,
        precision="fp32",
        notes=[SLOWER_NOTE, f"INT8 model kept: {int8.manifest.model_file}"],
    )


def _runtime_fp32(target: Target, ref: Artifact, artifact: Artifact, directory: Path) -> Artifact | None:
    """The candidate runtime's own FP32 build in ``directory``, timed beside it (OpenVINO: ORT FP32 is ``ref``)."""
    if not target.time_own_fp32 or artifact.manifest.precision == "fp32":
        return None
    return target.load("fallback")(ref, directory)


def _float_layers_cost(result: GateResult, artifact: Artifact, runs: int, target: Target) -> dict | None:
    """The accepted model against the ladder's first rung (its most-INT8 build), 1 thread, interleaved."""
    from edgetally.latency import measure_interleaved

    accepted = result.attempts[-1] if result.attempts else None
    first = next((a for a in result.attempts if accepted is not None and a.source == accepted.source), None)
    if not result.passed or first is None or first is accepted or first.artifact is None:
        return None
    if not first.artifact.model_path.is_file():
        return None
    accepted_row, first_row = measure_interleaved(
        [artifact, first.artifact], 1, runs, runtimes=[target.executor, target.executor]
    )
    ratio = round(accepted_row["p50_ms"] / max(first_row["p50_ms"], 1e-9), 3)
    return {
        "compared_with": first.strategy.name,
        "accepted_p50_ms": accepted_row["p50_ms"],
        "first_rung_p50_ms": first_row["p50_ms"],
        "ratio_1_thread": ratio,
        "statement": f"the float layers cost {100 * (ratio - 1):+.0f}% latency at 1 thread vs {first.strategy.name}",
    }


def _report(
    ref: Artifact,
    artifact: Artifact | None,
    result: GateResult,
    folds: Sequence[Fold],
    config: GateConfig,
    options: BuildOptions,
    target: Target,
    work: Path,
) -> dict:
    accepted = result.attempts[-1] if result.passed else None
    calibration = folds[0].calibration if folds else None
    fp32_size = model_bytes(ref)
    report: dict = {
        "passed": result.passed,
        "fallback": artifact is not None and not result.passed,
        "profile": options.profile,
        "target": target.describe(),
        "strategy": accepted.strategy.describe() if accepted else None,
        "gate": {
            "max_map_drop_points": config.max_map_drop,
            "min_agreement_f1": config.min_agreement,
            "folds": len(folds),
            "rule": "every fold must pass: the worst fold decides",
        },
        "accuracy": result.best.verdict.metrics if result.best else {},
        "attempts": [a.as_dict() for a in result.attempts],
        "calibration": calibration.provenance() if calibration is not None else None,
        "evaluation": options.eval_info or {},
        "sizes": {"fp32_bytes": fp32_size},
        "tools": tool_versions("onnx", "onnxruntime", "openvino", "nncf", "numpy"),
        **(options.extra_report or {}),
    }
    if accepted is not None:
        report["float_layers"] = accepted.build.get("float_layers", accepted.build.get("nodes_excluded"))
        if accepted.source is not None:
            report["quantised_model"] = accepted.source
    if artifact is not None:
        size = model_bytes(artifact)
        report["model_file"] = artifact.manifest.model_file
        report["precision"] = artifact.manifest.precision
        report["sizes"].update({"artifact_bytes": size, "ratio": round(size / fp32_size, 3)})
        # Kept beside the reference (reference/RUNTIME/): `edge bench` on the board times the artifact against
        # this same FP32 build, the one --fallback would ship (OpenVINO's has the Focus stem folded).
        own = _runtime_fp32(target, ref, artifact, ref.directory / target.runtime)
        if options.latency_runs > 0:
            report["latency"] = latency_table(
                ref, artifact, runs=options.latency_runs, runtime_fp32=own, executor=target.executor
            )
            report["speed"] = speed_verdict(report["latency"], artifact.manifest.precision, options.speed_threads)
            report["float_layers_cost"] = _float_layers_cost(result, artifact, options.latency_runs, target)
        else:
            report["latency"] = {"skipped": "latency runs set to 0"}
            report["speed"] = {"statement": "not measured (latency runs set to 0)"}
    if not result.passed:
        report["closest"] = _closest(ref, result, options, target, work, fp32_size)
    return report


def _closest(
    ref: Artifact, result: GateResult, options: BuildOptions, target: Target, work: Path, fp32_size: int
) -> dict | None:
    """A refused conversion still says what it refused: the closest attempt's size and speed against
    FP32, so that "INT8 fails by 2 points" and "INT8 would not be faster anyway" can be told apart."""
    best = result.best
    if best is None or best.artifact is None or not best.artifact.model_path.is_file():
        return None
    out: dict = {
        "strategy": best.strategy.name,
        "reason": best.verdict.reason,
        "sizes": {
            "artifact_bytes": model_bytes(best.artifact),
            "ratio": round(model_bytes(best.artifact) / fp32_size, 3),
        },
    }
    if options.latency_runs > 0:
        own = _runtime_fp32(target, ref, best.artifact, work / "runtime-fp32")
        out["latency"] = latency_table(
            ref, best.artifact, runs=options.latency_runs, runtime_fp32=own, executor=target.executor
        )
        out["speed"] = speed_verdict(out["latency"], best.artifact.manifest.precision, options.speed_threads)
    return out
