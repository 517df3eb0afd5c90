"""MOTChallenge IO (edgetally.tracking.mot_io) and the `edge track` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgetally.cli.track import track_command, track_sequence
from edgetally.errors import ConfigError
from edgetally.structures import Tracks
from edgetally.tracking.mot_io import (
    detections_by_frame,
    format_mot,
    parse_mot,
    read_mot,
    read_seqinfo,
    tracks_to_mot,
    write_mot,
)

SEQINFO = "[Sequence]\nname=Toy\nimDir=img1\nframeRate=10\nseqLength=4\nimWidth=640\nimHeight=480\nimExt=.jpg\n"


@pytest.mark.parametrize(
    ("text", "expected_first_row"),
    [
        ("1,-1,10,20,30,40,0.9,-1,-1,-1\n", [1, -1, 10, 20, 30, 40, 0.9, -1, -1, -1]),
        ("1,-1,10,20,30,40,0.9\n", [1, -1, 10, 20, 30, 40, 0.9, -1, -1, -1]),  # 7 columns: padded
        ("1 -1 10 20 30 40 0.9\n", [1, -1, 10, 20, 30, 40, 0.9, -1, -1, -1]),  # whitespace separated
        ("2,5,1,2,3,4\n", [2, 5, 1, 2, 3, 4, 1.0, -1, -1, -1]),  # no score column: score 1
        ("1,1,260,450,102,262,1,1,0.5\n", [1, 1, 260, 450, 102, 262, 1, 1, 0.5, -1]),  # MOT17 gt (9 cols)
    ],
)
def test_parse_mot_variants(text: str, expected_first_row: list[float]) -> None:
    table = parse_mot(text)
    assert table.shape == (1, 10)
    np.testing.assert_allclose(table[0], expected_first_row)


@pytest.mark.parametrize("text", ["1,2,3\n", "a,b,c,d,e,f\n"])
def test_parse_mot_rejects_garbage(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_mot(text, "bad.txt")


def test_empty_file_is_an_empty_table() -> None:
    assert parse_mot("\n\n").shape == (0, 10)


def test_seqinfo(tmp_path: Path) -> None:
    path = tmp_path / "seqinfo.ini"
    path.write_text(SEQINFO)
    info = read_seqinfo(path)
    assert (info.name, info.frame_rate, info.seq_length, info.width, info.height) == ("Toy", 10.0, 4, 640, 480)
    path.write_text("[Sequence]\nname=x\n")
    with pytest.raises(ConfigError, match="frameRate"):
        read_seqinfo(path)


def test_detections_by_frame_covers_every_frame() -> None:
    table = parse_mot("1,-1,0,0,10,10,0.9\n1,-1,5,5,10,20,0.3\n3,-1,1,1,2,2,0.8\n9,-1,1,1,2,2,0.8\n")
    frames = detections_by_frame(table, seq_length=4, min_score=0.5)
    assert [len(f) for f in frames] == [1, 0, 1, 0]  # frame 9 is past seqLength; 0.3 is below min
    np.testing.assert_allclose(frames[0].xyxy, [[0, 0, 10, 10]])
    np.testing.assert_allclose(frames[2].scores, [0.8])


def test_tracks_round_trip(tmp_path: Path) -> None:
    tracks = Tracks(
        np.array([7, 3]), np.array([[10, 20, 40, 80], [0.5, 1.5, 10.5, 11.5]]), np.array([0.9, 0.5]), np.array([0, 0])
    )
    rows = tracks_to_mot(5, tracks)
    write_mot(tmp_path / "out" / "t.txt", rows)
    back = read_mot(tmp_path / "out" / "t.txt")
    assert back[:, 1].tolist() == [3, 7]  # sorted by frame, then id
    np.testing.assert_allclose(back[1, :7], [5, 7, 10, 20, 30, 60, 0.9])
    np.testing.assert_allclose(back[0, 2:6], [0.5, 1.5, 10, 10])
    assert format_mot(rows[:0]) == ""


class _EchoTracker:
    """Reports every detection as track (index + 1): enough to test the frame/timestamp plumbing."""

    def __init__(self) -> None:
        self.timestamps: list[float] = []

    def update(self, detections, timestamp):
        self.timestamps.append(timestamp)
        n = len(detections)
        return Tracks(np.arange(1, n + 1), detections.xyxy, detections.scores, detections.class_ids)


def test_track_sequence_subsamples_with_real_timestamps() -> None:
    table = parse_mot("".join(f"{f},-1,{f},0,10,10,0.9\n" for f in range(1, 8)))
    tracker = _EchoTracker()
    run = track_sequence(tracker, detections_by_frame(table, 7), frame_rate=10.0, fps_divisor=3)
    assert tracker.timestamps == pytest.approx([0.0, 0.3, 0.6])
    assert run.frames == 3
    assert run.table[:, 0].tolist() == [1, 4, 7]  # original frame numbers are kept


def _toy_sequence(tmp_path: Path) -> tuple[Path, Path]:
    # Two people walking right, 4 frames, plus one low-score false positive on frame 2.
    lines = []
    for f in range(1, 5):
        lines.append(f"{f},-1,{100 + 10 * f},100,50,120,0.95,-1,-1,-1")
        lines.append(f"{f},-1,{400 + 10 * f},120,50,120,0.90,-1,-1,-1")
    lines.append("2,-1,300,300,40,40,0.2,-1,-1,-1")
    dets, seqinfo = tmp_path / "det.txt", tmp_path / "seqinfo.ini"
    dets.write_text("\n".join(lines) + "\n")
    seqinfo.write_text(SEQINFO)
    return dets, seqinfo


def test_edge_track_writes_valid_tracks(tmp_path: Path) -> None:
    dets, seqinfo = _toy_sequence(tmp_path)
    out = tmp_path / "tracks.txt"
    result = CliRunner().invoke(
        track_command, ["--mot-dets", str(dets), "--seqinfo", str(seqinfo), "--out", str(out), "--min-score", "0.5"]
    )
    assert result.exit_code == 0, result.output
    tracks = read_mot(out)
    assert len(tracks) > 0 and set(tracks[:, 0]) <= {1, 2, 3, 4}
    assert len(np.unique(tracks[:, 1])) == 2  # two people, two ids, no id for the false positive
    for tid in np.unique(tracks[:, 1]):  # each id stays on one person
        xs = tracks[tracks[:, 1] == tid, 2]
        assert xs.max() - xs.min() < 100
    assert (tracks[:, 4] > 0).all() and (tracks[:, 5] > 0).all()
    assert "tracker" in result.output and "ms/frame" in result.output


def test_edge_track_reports_bad_input(tmp_path: Path) -> None:
    dets, seqinfo = _toy_sequence(tmp_path)
    seqinfo.write_text("[Sequence]\nname=x\n")
    result = CliRunner().invoke(
        track_command, ["--mot-dets", str(dets), "--seqinfo", str(seqinfo), "--out", str(tmp_path / "t.txt")]
    )
    assert result.exit_code == 2
    assert "frameRate" in result.output
