"""`edge label`: frame sampling, motion proposals linked by the tracker, the action store (persisted at
once), the time split of the export, the recorded session replayed on the shared video, and the page
driven by keyboard and mouse in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgetally.cli import main
from edgetally.label.export import export_dataset
from edgetally.label.store import ACTIONS, SESSION, LabelError, LabelStore
from edgetally.postprocess import box_iou
from tests.label_support import LabelledScene, labelled_scene

REPO = Path(__file__).resolve().parents[1]
RECORDING = REPO / "tests/data/traffic_road.labels.json"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> LabelledScene:
    return labelled_scene(tmp_path_factory.mktemp("label"))


def _fresh(tmp_path: Path) -> LabelStore:
    frames = [
        {
            "index": i,
            "time": i / 10,
            "image": f"frames/frame_{i:06d}.jpg",
            "boxes": [
                {"xyxy": [10, 10, 50, 40], "track": 7, "origin": "motion"},
                {"xyxy": [100, 100, 140, 130], "track": None, "origin": "motion"},
            ],
        }
        for i in (0, 5, 9)
    ]
    return LabelStore.create(tmp_path / "s", "clip.mp4", ["car", "truck"], frames, 320, 180)


def test_frames_are_spread_over_time_and_motion_is_proposed_and_tracked(scene: LabelledScene) -> None:
    frames = scene.store.state["frames"]
    indices = [f["index"] for f in frames]
    n = scene.truth.num_frames
    assert len(indices) == 12 and indices == sorted(set(indices))
    assert indices[0] < 0.15 * n and indices[-1] > 0.85 * n and max(np.diff(indices)) <= 2 * n / 12
    found = total = 0
    for f in frames:  # what the proposals gave, before the person fixed them: the recorded session's first state
        fb = scene.truth.frames[f["index"]]
        side = np.minimum(fb.xyxy[:, 2] - fb.xyxy[:, 0], fb.xyxy[:, 3] - fb.xyxy[:, 1])
        want = fb.xyxy[(fb.visibility >= 0.5) & (side >= 8)]
        total += len(want)
        props = np.array([b["xyxy"] for b in f["boxes"]], np.float32).reshape(-1, 4)
        if len(props) and len(want):
            found += int((box_iou(want, props).max(axis=1) >= 0.5).sum())
    assert found >= 0.5 * total, f"motion proposals found {found} of {total} visible vehicles"


def test_tracks_link_one_vehicle_across_sampled_frames(tmp_path: Path) -> None:
    from edgetally.demo.scene import SceneConfig, render_scene
    from edgetally.label.propose import scan

    video = tmp_path / "v.mp4"
    truth = render_scene(SceneConfig(seconds=4, seed=3, view="topdown"), video)
    s = scan(str(video), truth.num_frames)
    same = on_vehicles = linked = 0
    for k in range(truth.num_frames - 1):  # consecutive frames: one track id stays on one vehicle
        a, b = s.tracks[k], s.tracks[k + 1]
        for tid in set(a[a >= 0].tolist()) & set(b[b >= 0].tolist()):
            boxes = [s.blobs[k][a == tid][0], s.blobs[k + 1][b == tid][0]]
            owners = [scene_owner(truth.frames[i], box) for i, box in zip((k, k + 1), boxes)]
            linked += 1
            if None not in owners:
                on_vehicles += 1
                same += owners[0] == owners[1]
    assert linked > 100 and on_vehicles >= 0.6 * linked and same >= 0.95 * on_vehicles, (linked, on_vehicles, same)


def scene_owner(fb, box: np.ndarray) -> int | None:
    iou = box_iou(box[None], fb.xyxy)[0] if len(fb.xyxy) else np.zeros(0)
    return int(fb.ids[iou.argmax()]) if len(iou) and iou.max() >= 0.3 else None


@pytest.mark.parametrize(
    "action, message",
    [
        ({"op": "fly"}, "unknown action"),
        ({"op": "set_track_class", "track": 7, "class": "bus"}, "unknown class 'bus'"),
        ({"op": "set_track_class", "track": 99, "class": "car"}, "no track 99"),
        ({"op": "add_box", "frame": 5, "xyxy": [400, 300, 500, 350], "class": "car"}, "outside the 320x180 image"),
        ({"op": "add_box", "frame": 5, "xyxy": [1, 2, 3], "class": "car"}, "expected [x1, y1, x2, y2]"),
        ({"op": "move_box", "frame": 4, "box": 1, "xyxy": [1, 1, 9, 9]}, "no sampled frame 4"),
        ({"op": "delete_box", "frame": 0, "box": 99}, "has no box 99"),
        ({"op": "done", "frame": 0}, "2 box(es) have no class yet"),
        ({"op": "add_class", "class": "two words"}, "expected one word"),
    ],
)
def test_bad_actions_are_refused_and_change_nothing(tmp_path: Path, action: dict, message: str) -> None:
    store = _fresh(tmp_path)
    before = (tmp_path / "s" / SESSION).read_text()
    with pytest.raises(LabelError, match=None) as info:
        store.apply(action)
    assert message in str(info.value)
    assert (tmp_path / "s" / SESSION).read_text() == before
    assert not (tmp_path / "s" / ACTIONS).exists()


def test_every_action_is_on_disk_at_once(tmp_path: Path) -> None:
    store = _fresh(tmp_path)
    store.apply({"op": "set_track_class", "track": 7, "class": "truck"})  # one key: the track on all 3 frames
    store.apply({"op": "delete_box", "frame": 0, "box": 2})
    store.apply({"op": "add_box", "frame": 0, "xyxy": [-5, 150, 30, 200], "class": "car"})  # clipped to the image
    store.apply({"op": "done", "frame": 0})
    reopened = LabelStore.open(tmp_path / "s")  # as after a closed page or a killed server
    assert reopened.state == store.state
    labelled = reopened.labelled()
    assert [(xyxy, name) for xyxy, name in labelled[0][1]] == [
        ([10, 10, 50, 40], "truck"),
        ([0.0, 150.0, 30.0, 180.0], "car"),
    ]
    assert [b["class"] for b in reopened.state["frames"][1]["boxes"]] == [None, None]  # track class, not copies
    assert reopened.box_class(reopened.state["frames"][1]["boxes"][0]) == "truck"
    assert len((tmp_path / "s" / ACTIONS).read_text().splitlines()) == 4
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [ACTIONS, SESSION]  # no temp file left


def test_export_splits_by_time_and_refuses_to_lose_anything(scene: LabelledScene, tmp_path: Path) -> None:
    out = scene.dataset.directory
    meta = yaml.safe_load((out / "data.yaml").read_text())
    assert meta["names"] == list(scene.truth.labels)
    assert max(meta["train_frames"]) < min(meta["val_frames"]) and len(meta["val_frames"]) == 3  # 20 % of 12, the last
    labels = sorted((out / "labels").glob("*/*.txt"))
    assert len(labels) == 12 and sum(len(p.read_text().splitlines()) for p in labels) == scene.dataset.boxes
    row = (out / "labels/train" / f"frame_{meta['train_frames'][0]:06d}.txt").read_text().split()
    assert 0 <= int(row[0]) < 4 and all(0 < float(v) <= 1 for v in row[1:5])
    with pytest.raises(Exception, match="cannot replace the labelling session"):
        export_dataset(scene.store, scene.store.directory)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(Exception, match="not an earlier export"):
        export_dataset(scene.store, other)
    assert (other / "keep.txt").read_text() == "mine"


def test_cli_exports_and_refuses_a_new_session_without_classes(scene: LabelledScene, tmp_path: Path) -> None:
    copy = tmp_path / "labels"
    shutil.copytree(scene.store.directory, copy)
    assert main(["label", str(scene.video), "--out", str(copy), "--export", "--dataset", str(tmp_path / "ds")]) == 0
    assert len(list((tmp_path / "ds/images/val").iterdir())) == 3
    assert main(["label", str(scene.video), "--out", str(tmp_path / "new"), "--export"]) == 2
    assert not (tmp_path / "new").exists()


def test_recorded_session_replays_on_the_shared_video(shared_data: Path, tmp_path: Path) -> None:
    from edgetally.label.replay import replay

    data = json.loads(RECORDING.read_text())
    store = replay(RECORDING, shared_data / "videos/traffic_road.mp4", tmp_path / "labels")
    assert len(store.labelled()) == len(data["labels"]) == 40
    summary = export_dataset(store, tmp_path / "dataset")
    assert summary.train_frames == 32 and summary.val_frames == 8 and summary.boxes > 100
    tampered = dict(data, actions=data["actions"][:-3])
    with pytest.raises(Exception, match="does not give the recorded labels"):
        replay(tampered, shared_data / "videos/traffic_road.mp4", tmp_path / "again")


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium test needs Debian's chromium + chromium-driver (scripts/test.sh installs them as root)"
        )
    pytest.importorskip("selenium", reason="needs selenium (dev extra)")
    return browser, driver


def test_page_in_headless_chromium(scene: LabelledScene, tmp_path: Path) -> None:
    browser, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from edgetally.label.server import LabelServer
    from edgetally.label.session import start_session
    from tests.mqtt_support import wait_until

    store = start_session(str(scene.video), tmp_path / "labels", ["car", "truck", "bus", "bicycle"], 4)
    server = LabelServer(store, tmp_path / "dataset", 0, val_fraction=0.3).start()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,800"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)

    def state(expr):
        return driver.execute_script(f"return {expr}")

    try:
        driver.get(server.url)
        assert wait_until(lambda: state("window.labelState.image.naturalWidth") == 640, timeout=10)
        keys = ActionChains(driver)
        current = "window.labelState.session.frames[window.labelState.cur]"
        for frame_no in range(2):
            # The store marks a frame done before the page has read the answer and shown the next one:
            # wait for the page to be on a frame that is not done yet, then read it in one call.
            assert wait_until(lambda: state(f"!{current}.done && window.labelState.image.complete"), timeout=10)
            index, box_ids = state(f"[{current}.index, {current}.boxes.map(b => b.id)]")
            # Tab to each box; a tracked box gets its whole track classed by one key.
            for k, box_id in enumerate(box_ids):
                ActionChains(driver).send_keys(Keys.TAB).perform()
                assert wait_until(lambda b=box_id: state("window.labelState.selected") == [b], timeout=5)
                ActionChains(driver).send_keys("2").perform()
                # One key at a time, each after the server saved the last: on a loaded machine a Tab
                # sent while the previous class was still being posted selected a stale box.
                assert wait_until(lambda k=k, i=index: _classed(tmp_path / "labels", i) >= k + 1, timeout=10)
            canvas = driver.find_element("id", "view")
            size = canvas.size
            ActionChains(driver).move_to_element_with_offset(
                canvas, -size["width"] // 2 + 20, -size["height"] // 2 + 20
            ).click_and_hold().move_by_offset(40, 30).release().perform()  # draw a box (class = last key: truck)
            assert wait_until(
                lambda: state(
                    "window.labelState.session.frames[window.labelState.cur].boxes.some(b => b.origin === 'person')"
                ),
                timeout=5,
            )
            keys.send_keys(Keys.ENTER).perform()
            want = frame_no + 1
            assert wait_until(
                lambda w=want: len([f for f in LabelStore.open(tmp_path / "labels").state["frames"] if f["done"]]) == w,
                timeout=5,
            ), driver.find_element("id", "status").text
        driver.save_screenshot(str(tmp_path / "page.png"))
        driver.refresh()  # the page closed and reopened: the server kept everything
        assert wait_until(
            lambda: (
                state("window.labelState.session && window.labelState.session.frames.filter(f => f.done).length") == 2
            ),
            timeout=10,
        )
        ActionChains(driver).send_keys("e").perform()
        assert wait_until(lambda: (tmp_path / "dataset/data.yaml").is_file(), timeout=10)
        saved = LabelStore.open(tmp_path / "labels")
        done = [f for f, _ in saved.labelled()]
        assert all(saved.box_class(b) is not None for f in done for b in f["boxes"])
        assert sum(b["origin"] == "person" for f in done for b in f["boxes"]) == 2
        assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        driver.quit()
        server.stop()


def _classed(labels: Path, index: int) -> int:
    """Boxes of frame ``index`` with a class (their own or their track's), as the store has them."""
    store = LabelStore.open(labels)
    frame = next(f for f in store.state["frames"] if f["index"] == index)
    return sum(store.box_class(b) is not None for b in frame["boxes"])
