"""Shared helpers: a short top-down scene, an `edge label` session over it, and its oracle labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.label_oracle import Effort, label_session, scene_truth
from edgetally.demo.scene import SceneConfig, SceneTruth, render_scene
from edgetally.label.export import ExportSummary, export_dataset
from edgetally.label.session import start_session
from edgetally.label.store import LabelStore


@dataclass
class LabelledScene:
    video: Path
    truth: SceneTruth
    store: LabelStore
    effort: Effort
    dataset: ExportSummary


def labelled_scene(work: Path, seconds: float = 6.0, frames: int = 12, seed: int = 5) -> LabelledScene:
    video = work / "topdown.mp4"
    truth = render_scene(SceneConfig(seconds=seconds, seed=seed, view="topdown"), video)
    store = start_session(str(video), work / "labels", list(truth.labels), frames)
    effort = label_session(store, scene_truth(truth))
    return LabelledScene(video, truth, store, effort, export_dataset(store, work / "dataset"))
