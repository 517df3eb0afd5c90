"""`edge train`: dataset + base model -> fine-tuned weights, ONNX, and a before/after report.

Order matters for "nothing is lost": the dataset and the model are read and checked, and the time
budget is probed, before anything is written; the dataset is only ever read; ``--out`` may not be the
dataset or hold it. Writes into OUT:

    model.onnx      YOLOX raw-head layout, input 'images' [1, 3, H, W], output 'output' [1, A, 5 + C]
    weights.pt      state_dict of the fine-tuned torch module (torch.load(weights_only=True))
    labels.txt      the dataset's classes, in order
    report.json     mAP50 / mAP50-95 before and after on the validation split (and counts on a clip)
    report.md       the same for people, plus the `edge convert` command that comes next
    train_log.txt   every log line
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgetally.errors import UsageError
from edgetally.train.dataset import Dataset, load_dataset
from edgetally.train.model import Trainable, export_onnx, load_base, parameter_count
from edgetally.train.trainer import Evaluator, FitResult, TrainConfig, check_budget, fit


@dataclass(frozen=True)
class FinetuneRequest:
    dataset: Path
    model: Path
    out: Path
    config: TrainConfig = field(default_factory=TrainConfig)
    base_labels: Sequence[str] | None = None
    input_hw: tuple[int, int] | None = None
    clip: Path | None = None
    lines: Sequence[tuple[str, list[tuple[float, float]]]] = ()
    truth: Path | None = None
    threads: int = 2


class Log:
    """Prints (through ``echo``) and keeps every line for train_log.txt."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.lines: list[str] = []
        self.echo = echo
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {msg}"
        self.lines.append(line)
        self.echo(line)


def _check_out(out: Path, dataset: Path) -> None:
    o, d = out.resolve(), dataset.resolve()
    if o == d or o in d.parents:
        raise UsageError(f"--out {out}: would hold the dataset {dataset}; choose a separate folder")
    if (o / "data.yaml").exists() or (o / "session.json").exists():
        raise UsageError(f"--out {out}: holds a dataset or a labelling session; choose a separate folder")


def _progress_bar(budget_s: float) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc="fine-tuning",
        unit="%",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<"
        f"{int(budget_s // 60)}:{int(budget_s % 60):02d} {{postfix}}",
        leave=False,
    )

    def update(progress: float, note: str) -> None:
        bar.n = min(100, int(progress * 100))
        bar.set_postfix_str(note, refresh=True)

    return update, bar.close


def _base_onnx(req: FinetuneRequest, base: Trainable, tmp: Path) -> Path:
    """The base model as ONNX for the 'before' figures: the file itself, or an export of the .pt."""
    if req.model.suffix.lower() == ".onnx":
        return req.model
    path = tmp / "base.onnx"
    export_onnx(base, path)
    base.native_hw = base.input_hw
    return path


def _summary(req: FinetuneRequest, ds: Dataset, base: Trainable, result: FitResult, judged: dict) -> dict[str, Any]:
    report: dict[str, Any] = {
        "dataset": str(req.dataset),
        "dataset_summary": ds.summary(),
        "classes": list(ds.classes),
        "base_model": str(req.model),
        "family": base.family,
        "base_classes": len(base.classes),
        "input_hw": list(base.input_hw),
        "parameters": parameter_count(base),
        "train_frames": len(ds.train),
        "val_frames": len(ds.val),
        "val_split": "by time (contiguous block)",
        "budget_s": req.config.budget_s,
        "train_seconds": result.seconds,
        "iterations": result.iterations,
        "stopped": result.stopped,
        "best": result.best,
        "history": result.history,
        **judged,
    }
    if req.truth is not None and "counts_after" in judged:
        from edgetally.train.judge import read_truth, totals

        truth = read_truth(req.truth)
        report["counts_truth"] = truth
        for when in ("before", "after"):
            got = totals(judged[f"counts_{when}"])
            report[f"count_error_{when}"] = {k: round(abs(got.get(k, 0) - n) / max(n, 1), 4) for k, n in truth.items()}
    return report


def finetune(req: FinetuneRequest, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole command; returns the report (also written to OUT/report.json)."""
    from edgetally.train.judge import before_after

    torch.set_num_threads(req.threads)
    log = Log(echo)
    _check_out(req.out, req.dataset)
    ds = load_dataset(req.dataset)
    log(f"dataset {req.dataset}: {ds.summary()}")
    base = load_base(req.model, req.base_labels, req.input_hw)
    base_labels = base.classes
    log(
        f"base model {req.model}: {base.family}, {parameter_count(base)} parameters, input {base.input_hw}, "
        f"strides {base.strides}, {len(base_labels)} classes"
    )
    with tempfile.TemporaryDirectory(prefix="edge-train-") as tmp:
        base_onnx = _base_onnx(req, base, Path(tmp))
        model = base.with_classes(ds.classes).to(memory_format=torch.channels_last)
        frozen = model.freeze(req.config.freeze)
        kept = [c for c in ds.classes if c in base_labels]
        log(
            f"class head replaced: {list(ds.classes)} (weights kept for {kept or 'none'}); "
            f"first {frozen} convolutions frozen; training at input {model.input_hw}"
        )
        evaluator = Evaluator(ds.val, model)
        step_s = check_budget(model, ds.train, evaluator, req.config)
        log(f"one step of {req.config.batch} images takes {step_s:.2f} s here; budget {req.config.budget_s:g} s")
        update, close = _progress_bar(req.config.budget_s)
        try:
            result = fit(model, ds.train, evaluator, req.config, log, update)
        finally:
            close()
        log(
            f"stopped: {result.stopped} after {result.iterations} steps in {result.seconds} s; best at step "
            f"{result.best['iteration']}: val mAP50 {result.best['map50']:.3f} mAP50-95 {result.best['map50_95']:.3f}"
        )
        req.out.mkdir(parents=True, exist_ok=True)
        model = model.to(memory_format=torch.contiguous_format)
        torch.save(model.state_dict(), req.out / "weights.pt")
        diff = export_onnx(model, req.out / "model.onnx")
        (req.out / "labels.txt").write_text("".join(f"{c}\n" for c in ds.classes))
        log(f"wrote {req.out}/model.onnx (ONNX vs torch max abs diff {diff:.1e}), weights.pt, labels.txt")
        judged = before_after(
            base_onnx,
            req.out / "model.onnx",
            base_labels,
            ds.classes,
            base.native_hw,
            base.input_hw,
            base.strides,
            ds.val,
            ds.classes,
            req.clip,
            req.lines,
            req.threads,
        )
    report = _summary(req, ds, base, result, judged)
    log(
        f"validation mAP50 {judged['map_before']['map50']:.3f} -> {judged['map_after']['map50']:.3f}, "
        f"mAP50-95 {judged['map_before']['map50_95']:.3f} -> {judged['map_after']['map50_95']:.3f} (FP32, runner stack)"
    )
    if judged.get("drop_contained"):
        log(
            f"boxes inside better boxes dropped at {judged['drop_contained']:g} of the smaller box's area "
            "(it scored best on the validation frames; parts of one object would count twice)"
        )
    report["next"] = convert_command(req, base, float(judged.get("drop_contained", 0.0)))
    (req.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (req.out / "report.md").write_text(report_markdown(report))
    (req.out / "train_log.txt").write_text("\n".join(log.lines) + "\n")
    return report


def convert_command(req: FinetuneRequest, base: Trainable, drop_contained: float = 0.0) -> str:
    h, w = base.input_hw
    d = req.dataset
    drop = f" --drop-contained {drop_contained:g}" if drop_contained > 0 else ""
    return (
        f"edge convert {req.out / 'model.onnx'} --profile PROFILE --decoder yolox --input-size {h}x{w} "
        f"--labels {req.out / 'labels.txt'} --calib {req.clip or 'CAMERA_VIDEO'} --eval-images {d / 'images/val'} "
        f"--eval-labels {d / 'labels/val'} --class-agnostic-nms{drop} --out ARTIFACT_DIR"
    )


def report_markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# edge train: {r['base_model']} on {r['dataset']}",
        "",
        f"- data: {r['dataset_summary']}; validation split {r['val_split']}",
        f"- model: {r['family']}, {r['parameters']} parameters, input {r['input_hw']}",
        f"- training: {r['iterations']} steps in {r['train_seconds']} s (budget {r['budget_s']} s), stopped: {r['stopped']}",
        "",
        "| validation (FP32, runner stack) | before | after |",
        "|---|---|---|",
        f"| mAP50 | {r['map_before']['map50']:.3f} | {r['map_after']['map50']:.3f} |",
        f"| mAP50-95 | {r['map_before']['map50_95']:.3f} | {r['map_after']['map50_95']:.3f} |",
    ]
    if "drop_contained_tried" in r:
        tried = ", ".join(f"{f}: {m['map50']:.3f}" for f, m in r["drop_contained_tried"].items())
        lines += [
            "",
            f"Contained boxes dropped at {r['drop_contained']:g} (validation mAP50 by setting, 0 = off: {tried}).",
        ]
    if "counts_after" in r:
        from edgetally.train.judge import totals

        lines += ["", "| counts on the clip (all classes, in + out) | before | after | truth |", "|---|---|---|---|"]
        truth = r.get("counts_truth", {})
        for name, after in totals(r["counts_after"]).items():
            lines.append(f"| {name} | {totals(r['counts_before']).get(name, 0)} | {after} | {truth.get(name, '-')} |")
    lines += [
        "",
        "Next, quantise for a board and gate it on this camera's validation frames:",
        "",
        f"    {r['next']}",
        "",
    ]
    return "\n".join(lines)
