"""The tracking benchmark harness (benchmarks/tracking): scoring, noise, counting truth, a quick run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trackeval", reason="the 'bench' extra (trackeval, trackers) is not installed")

from benchmarks.tracking import counting, metrics
from benchmarks.tracking.data import Sequence, load_mot15, load_mot17_noisy, subsample
from benchmarks.tracking.noise import NoiseSpec, evaluated_gt, noisy_detections
from edgetally.tracking.mot_io import SeqInfo, parse_mot

INFO = SeqInfo("Toy", 10.0, 20, 640, 480)


def _toy_gt(benchmark: str = "MOT15") -> np.ndarray:
    """Three people walking, 20 frames, 10 columns (MOT17 style: flag 1, class 1, visibility 1)."""
    rows = []
    for f in range(1, 21):
        for pid, (x, y) in enumerate([(10, 50), (200, 60), (400, 300)], start=1):
            rows.append([f, pid, x + 5 * f, y + 2 * f, 40, 100, 1, 1 if benchmark == "MOT17" else -1, 1, -1])
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("benchmark", ["MOT15", "MOT17"])
def test_gt_scored_against_itself_is_perfect(benchmark: str) -> None:
    gt = _toy_gt(benchmark)
    seq = Sequence("Toy", benchmark, INFO, gt, gt)
    combined, per_seq = metrics.score([(seq, gt.copy())])
    assert (combined.mota, combined.idf1, combined.hota) == pytest.approx((1.0, 1.0, 1.0))
    assert (combined.idsw, combined.fp, combined.fn) == (0, 0, 0)
    assert per_seq["Toy"] == combined


def test_id_swap_and_misses_are_penalised() -> None:
    gt = _toy_gt()
    seq = Sequence("Toy", "MOT15", INFO, gt, gt)
    swapped = gt.copy()
    late = swapped[:, 0] > 10
    swapped[late & (gt[:, 1] == 1), 1], swapped[late & (gt[:, 1] == 2), 1] = 2, 1  # ids 1, 2 swap boxes
    swap_scores, _ = metrics.score([(seq, swapped)])
    assert swap_scores.idsw == 2 and swap_scores.fn == 0
    assert swap_scores.idf1 < 1.0 and swap_scores.hota < 1.0 and swap_scores.mota == pytest.approx(1 - 2 / 60)
    half, _ = metrics.score([(seq, gt[gt[:, 0] <= 10])])
    assert half.recall == pytest.approx(0.5) and half.precision == pytest.approx(1.0)


def test_noise_is_deterministic_and_controlled() -> None:
    gt = _toy_gt("MOT17")
    a = noisy_detections(gt, INFO, NoiseSpec())
    b = noisy_detections(gt, INFO, NoiseSpec())
    np.testing.assert_array_equal(a, b)
    clean = noisy_detections(gt, INFO, NoiseSpec(miss_rate=0, occlusion_miss=0, jitter=0, fp_per_frame=0))
    np.testing.assert_allclose(clean[:, 2:6], gt[:, 2:6])  # no noise: the GT boxes themselves
    assert (clean[:, 1] == -1).all() and ((clean[:, 6] > 0) & (clean[:, 6] <= 1)).all()
    missing = noisy_detections(gt, INFO, NoiseSpec(miss_rate=0.5, occlusion_miss=0, jitter=0, fp_per_frame=0))
    assert 0.3 * len(gt) < len(missing) < 0.7 * len(gt)
    fps = noisy_detections(gt, INFO, NoiseSpec(miss_rate=1.0, fp_per_frame=2.0))
    assert 20 < len(fps) < 60  # Poisson(2) false positives on each of 20 frames, nothing else


def _group_gt(offset: float) -> np.ndarray:
    """Frames 1-2: two people side by side (40x100 boxes ``offset`` px apart) and one far away, MOT17 style."""
    rows = [
        [f, pid, x, 50, 40, 100, 1, 1, 1, -1]
        for f in (1, 2)
        for pid, x in ((1, 100.0), (2, 100.0 + offset), (3, 400.0))
    ]
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize(
    ("offset", "nms_iou", "kept_per_frame"),
    [
        (10.0, 1.0, 3),  # IoU 0.6: without NMS, every person of the group keeps a box (the default)
        (10.0, 0.65, 3),  # IoU 0.6 is under the threshold
        (10.0, 0.45, 2),  # a detector's NMS keeps one box of the pair
        (30.0, 0.45, 3),  # IoU 0.14: both kept
    ],
)
def test_nms_keeps_one_box_of_a_tight_group(offset: float, nms_iou: float, kept_per_frame: int) -> None:
    gt = _group_gt(offset)
    spec = NoiseSpec(miss_rate=0, occlusion_miss=0, jitter=0, fp_per_frame=0, nms_iou=nms_iou)
    dets = noisy_detections(gt, INFO, spec, keep_ids=True)
    for frame in (1, 2):
        rows = dets[dets[:, 0] == frame]
        assert len(rows) == kept_per_frame
        assert 3 in rows[:, 1]  # the one far away is never suppressed
        if kept_per_frame == 2:  # the survivor of the pair is its higher-scored box
            pair = gt[(gt[:, 0] == frame) & (gt[:, 1] < 3)]
            unsuppressed = noisy_detections(gt, INFO, replace(spec, nms_iou=1.0), keep_ids=True)
            scores = {int(r[1]): r[6] for r in unsuppressed[unsuppressed[:, 0] == frame]}
            assert rows[rows[:, 1] < 3, 1].tolist() == [float(max(pair[:, 1], key=lambda i: scores[int(i)]))]
    assert (np.diff(dets[:, 0]) >= 0).all()  # still in frame order


def test_noise_can_keep_the_true_ids() -> None:
    """keep_ids: the same boxes, true detections labelled with their GT id, false positives -1."""
    gt = _toy_gt("MOT17")
    plain = noisy_detections(gt, INFO, NoiseSpec(fp_per_frame=2.0))
    labelled = noisy_detections(gt, INFO, NoiseSpec(fp_per_frame=2.0), keep_ids=True)
    np.testing.assert_array_equal(np.delete(plain, 1, axis=1), np.delete(labelled, 1, axis=1))
    assert (plain[:, 1] == -1).all()
    true = labelled[labelled[:, 1] >= 0]
    assert set(true[:, 1].tolist()) == {1.0, 2.0, 3.0} and len(true) < len(labelled)
    for row in true:  # each labelled box is a jittered copy of that person's GT box in that frame
        (g,) = gt[(gt[:, 0] == row[0]) & (gt[:, 1] == row[1])]
        assert np.abs(row[2:4] - g[2:4]).max() < 0.5 * g[4]


def test_evaluated_gt_keeps_considered_pedestrians() -> None:
    gt = parse_mot("1,1,0,0,5,5,1,1,1\n1,2,0,0,5,5,0,1,1\n1,3,0,0,5,5,1,7,1\n")
    assert evaluated_gt(gt, "MOT17")[:, 1].tolist() == [1]
    assert evaluated_gt(gt, "MOT15")[:, 1].tolist() == [1, 3]


def test_subsample_renumbers_frames() -> None:
    table = parse_mot("".join(f"{f},1,0,0,5,5,1\n" for f in range(1, 14)))
    assert subsample(table, 6)[:, 0].tolist() == [1, 2, 3]  # frames 1, 7, 13


HLINE = counting.CountLine("h", (-100.0, 200.0), (1000.0, 200.0))  # in = moving down


@pytest.mark.parametrize(
    ("bottoms", "expected"),
    [
        ([150, 180, 220, 250], {"in": 1, "out": 0}),  # walks down across the line
        ([250, 220, 180, 150], {"in": 0, "out": 1}),  # walks up
        ([150, 250, 150], {"in": 0, "out": 0}),  # 0.1 s past and back: under the settle time
        ([150, 195, 205, 195, 205, 150], {"in": 0, "out": 0}),  # wobbles inside the band only
        ([150, 170], {"in": 0, "out": 0}),  # never reaches the line
        ([150, 230, 150, 150], {"in": 0, "out": 0}),  # 0.1 s past and back: not a crossing (settle)
        ([150] + [230] * 6 + [150] * 6, {"in": 1, "out": 1}),  # U-turn, 0.5 s on each side
        ([150, 190, 205], {"in": 1, "out": 0}),  # ends just past the line (leaves): a crossing
        ([150, 230, 195], {"in": 0, "out": 0}),  # ends back on its own side, inside the band
    ],
)
def test_true_crossings_table(bottoms: list[float], expected: dict[str, int]) -> None:
    # Box height 100 -> truth band 10 px around y = 200; 10 fps -> settle 0.5 s = 5 frames.
    gt = np.array([[f + 1, 1, 50, b - 100, 20, 100, 1, 1, 1, -1] for f, b in enumerate(bottoms)], dtype=float)
    assert counting.true_crossings(gt, HLINE, 10.0) == expected


def test_counted_crossings_pass_first_boxes_to_the_counter() -> None:
    """A track first reported already past the line (a fast object at a low frame rate) counts
    only when the counter is told where its first detection was (TrackRun.first_boxes)."""
    bottoms = [240, 280, 320, 360, 400, 440, 480]  # reported from frame 1 on, all below y = 200
    tracks = np.array([[f + 1, 7, 50, b - 100, 20, 100, 0.9, -1, -1, -1] for f, b in enumerate(bottoms)], dtype=float)
    info = SeqInfo("Toy", 10.0, len(bottoms), 640, 480)
    first = {7: np.array([50.0, 50.0, 70.0, 150.0])}  # detected first 50 px above the line
    assert counting.counted_crossings(tracks, info, (HLINE,))["h"] == {"in": 0, "out": 0}
    assert counting.counted_crossings(tracks, info, (HLINE,), None, first)["h"] == {"in": 1, "out": 0}


def test_count_error_does_not_let_lines_cancel() -> None:
    rows = [{"true": 10, "counted": 12}, {"true": 10, "counted": 8}]
    err = counting.count_error(rows)
    assert err["abs_error_rate"] == pytest.approx(0.2) and err["net_error_rate"] == pytest.approx(0.0)


def test_parse_sort_table(shared_data: Path) -> None:
    from benchmarks.tracking.runner import parse_sort_table

    table = parse_sort_table(shared_data / "mot" / "README.sort.md")
    assert table["TUD-Campus"]["MOTA"] == pytest.approx(62.7)
    assert table["Venice-2"]["FN"] == 4109 and len(table) == 6


def test_quick_run_on_one_sequence(shared_data: Path) -> None:
    """Every tracker on TUD-Campus (SORT's detections) gives every metric, in a sane range; the
    counting path runs on MOT17-09 at 5 fps."""
    from benchmarks.tracking.adapters import TRACKER_NAMES, run_tracker
    from edgetally.tracking.mot_io import detections_by_frame

    mot = shared_data / "mot"
    (seq,) = load_mot15(mot, "det_sort_frcnn", ("TUD-Campus",)).sequences
    frames = detections_by_frame(seq.dets, seq.info.seq_length)
    for name in TRACKER_NAMES:
        run = run_tracker(name, frames, seq.info.frame_rate)
        scores, _ = metrics.score([(seq, run.table)])
        assert 0.3 < scores.mota <= 1.0 and 0.3 < scores.idf1 <= 1.0 and 0.3 < scores.hota <= 1.0, (name, scores)
        assert run.frames == 71 and run.seconds > 0
    (m17,) = load_mot17_noisy(mot, NoiseSpec(), 6, ("MOT17-09-FRCNN",)).sequences
    run = run_tracker("ours", detections_by_frame(m17.dets, m17.info.seq_length), m17.info.frame_rate)
    lines = counting.place_lines(evaluated_gt(m17.gt, "MOT17"), m17.info)
    got = counting.counted_crossings(run.table, m17.info, lines)
    assert set(got) == {"h33", "h67", "v33", "v67"} and sum(sum(d.values()) for d in got.values()) > 0


def test_counter_on_ground_truth_reproduces_true_crossings(shared_data: Path) -> None:
    """One crossing definition: the counter's defaults ARE the truth's (band 0.1 x height, settle
    0.5 s, a track that ends past the line crossed), so LineCounter with its defaults, fed MOT17-09's
    ground-truth tracks at full rate, finds exactly the true crossings (independent implementations)."""
    from edgetally.counting.line import LineCounter

    default = LineCounter("d", (0, 0), (1, 0), ["person"])
    assert (default.hysteresis, default.settle_s) == (counting.TRUTH_BAND_FRAC, counting.TRUTH_SETTLE_S)
    (seq,) = load_mot17_noisy(shared_data / "mot", NoiseSpec(), 1, ("MOT17-09-FRCNN",)).sequences
    gt = evaluated_gt(seq.gt, "MOT17")
    lines = counting.place_lines(gt, seq.info)
    got = counting.counted_crossings(gt, seq.info, lines)
    truth = {ln.name: counting.true_crossings(gt, ln, seq.info.frame_rate) for ln in lines}
    assert got == truth and sum(sum(d.values()) for d in truth.values()) > 40


def test_interleaved_timing_times_every_tracker_and_cli_needs_data(tmp_path: Path) -> None:
    """benchmarks.tracking.timing: a median ms/frame for every tracker on the same frames; the
    command exits 2 with a message when the MOT folders are missing."""
    from benchmarks.tracking.adapters import TRACKER_NAMES
    from benchmarks.tracking.timing import main, time_trackers
    from edgetally.tracking.mot_io import detections_by_frame

    frames = detections_by_frame(_toy_gt(), INFO.seq_length)
    medians = time_trackers([(frames, INFO.frame_rate)], repeats=2)
    assert set(medians) == set(TRACKER_NAMES)
    assert all(0.0 < ms < 100.0 for ms in medians.values()), medians
    assert main(["--mot-root", str(tmp_path), "--repeats", "1"]) == 2


def test_true_ids_reference_row(shared_data: Path) -> None:
    """The counting benchmark's `true ids` row (the trackers' detections with their true ids): with a
    noise-free detector it is the ground truth itself, so it counts exactly what the `gt tracks` row
    counts; with the default noise its count differs (misses and jitter, no tracker)."""
    from benchmarks.tracking.runner import FPS_DIVISORS, PERFECT_TRACKS, TRUE_IDS, BenchConfig, counting_benchmark

    def summary(noise: NoiseSpec) -> dict[tuple[int, str], int]:
        mot17 = [load_mot17_noisy(shared_data / "mot", noise, d, ("MOT17-09-FRCNN",)) for d in FPS_DIVISORS]
        result = counting_benchmark(mot17, {}, BenchConfig(mot_root=shared_data / "mot", trackers=(), noise=noise))
        return {(r["fps"], r["tracker"]): r["counted"] for r in result["summary"]}

    clean = summary(NoiseSpec(miss_rate=0, occlusion_miss=0, jitter=0, fp_per_frame=0))
    assert {k[1] for k in clean} == {PERFECT_TRACKS, TRUE_IDS}
    for fps in (30, 15, 5):
        assert clean[(fps, TRUE_IDS)] == clean[(fps, PERFECT_TRACKS)] > 0
    noisy = summary(NoiseSpec())
    assert any(noisy[(fps, TRUE_IDS)] != noisy[(fps, PERFECT_TRACKS)] for fps in (30, 15, 5))


def test_seeds_repeat_the_mot17_part_per_seed(shared_data: Path, tmp_path: Path) -> None:
    """benchmarks.tracking.seeds: one row per (seed, fps, tracker); the truth and the GT-tracks
    reference do not depend on the seed, the noisy detections do; the table's mean is the mean."""
    from benchmarks.tracking.runner import PERFECT_TRACKS, TRUE_IDS, BenchConfig
    from benchmarks.tracking.seeds import main, render, run_seeds

    rows = run_seeds(BenchConfig(mot_root=shared_data / "mot", quick=True, trackers=("ours",)), (1, 2))
    by = {(r["seed"], r["fps"], r["tracker"]): r for r in rows}
    assert set(by) == {(s, f, t) for s in (1, 2) for f in (30, 15, 5) for t in ("ours", PERFECT_TRACKS, TRUE_IDS)}
    for fps in (30, 15, 5):
        assert by[(1, fps, "ours")]["true"] == by[(2, fps, "ours")]["true"] > 0
        assert by[(1, fps, PERFECT_TRACKS)]["counted"] == by[(2, fps, PERFECT_TRACKS)]["counted"]
        assert 0.0 < by[(1, fps, "ours")]["hota"] <= 1.0
    assert any(by[(1, f, TRUE_IDS)]["counted"] != by[(2, f, TRUE_IDS)]["counted"] for f in (30, 15, 5))
    table = render(rows, (1, 2))
    ours30 = next(line for line in table.splitlines() if line.startswith("| 30 | ours |")).split(" | ")
    mean = 100 * (by[(1, 30, "ours")]["abs_error_rate"] + by[(2, 30, "ours")]["abs_error_rate"]) / 2
    assert float(ours30[4]) == pytest.approx(mean, abs=0.051)
    assert main(["--seeds", "x"]) == 2
    assert main(["--mot-root", str(tmp_path)]) == 2
    assert main(["--quick", "--counter-param", "settle_s"]) == 2  # not KEY=VALUE: a usage error


@pytest.mark.parametrize(
    "args",
    [
        ["--ours-param", "match_iou"],
        ["--ours-param", "height_iou=false"],
        ["--counter-param", "settle=1"],
        ["--noise", "no_such_field=1"],
        ["--trackers", "nope"],
    ],
)
def test_benchmark_cli_rejects_bad_arguments_with_exit_2(shared_data: Path, args: list[str]) -> None:
    from benchmarks.tracking.__main__ import main

    assert main(["--quick", "--mot-root", str(shared_data / "mot"), *args]) == 2
