"""Who may change a device's geometry is the broker's ACL (docs/intervals.md): with the documented
mosquitto ACL, the 'surveyor' dashboard's save reaches the device and gets its answer; the read-only
'dashboard' user's save never reaches it (mosquitto drops the denied publish) and the editor is told
why; a valid change from the surveyor is written and reloaded, the file untouched otherwise."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edgetally.config import load_config
from edgetally.dashboard.server import Dashboard
from edgetally.hooks import CounterInfo, RunContext
from edgetally.sinks.config_command import ConfigCommand
from edgetally.sinks.mqtt import MqttSettings, MqttSink
from edgetally.structures import CountTotals
from tests.mqtt_support import MOSQUITTO, Mosquitto, wait_until

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (scripts/test.sh installs it as root)")

ACL = """pattern readwrite edgetally/%u/#

user dashboard
topic read edgetally/#
topic write edgetally/+/cmd/reset
topic write edgetally/+/cmd/snapshot

user surveyor
topic read edgetally/#
topic write edgetally/+/cmd/config
topic write edgetally/+/cmd/reload
"""
USERS = {"cam1": "pw-cam", "dashboard": "pw-dash", "surveyor": "pw-survey"}


def test_broker_acl_decides_who_may_change_geometry(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mq", users=USERS, acl=ACL).start()
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: art\nsource: cam.mp4\nlines:\n  - {name: L, points: [[100, 0], [100, 360]]}\n")
    original = cfg.read_bytes()
    reloads: list[dict[str, object]] = []
    mqtt = MqttSink(
        MqttSettings(
            url=f"mqtt://cam1:pw-cam@127.0.0.1:{broker.port}",
            device_id="cam1",
            outbox=tmp_path / "outbox.sqlite",
            homeassistant=False,
        )
    )
    command = ConfigCommand(mqtt, cfg, ["car", "bus"], reload_timeout_s=5.0)  # reloads via the context's commands
    ctx = RunContext(
        "cam1", [CounterInfo("L", "line", ("in", "out"))], ["car", "bus"], CountTotals(), commands=reloads.append
    )
    boards = {
        user: Dashboard(f"mqtt://{user}:{USERS[user]}@127.0.0.1:{broker.port}", 0) for user in ("dashboard", "surveyor")
    }
    for board in boards.values():
        board.editor.timeout_s = 3.0  # type: ignore[union-attr]
    try:
        mqtt.open(ctx)
        assert wait_until(lambda: mqtt.connected, 10)
        command.publish_state(load_config(cfg))
        command.frame_seen(640, 360)
        for board in boards.values():
            board.start()
            assert board.wait_connected()
            assert wait_until(lambda b=board: b.state.device_config("cam1") is not None, 10)

        code, answer = boards["dashboard"].editor.send("cam1", {"classes": ["car"]})  # type: ignore[union-attr]
        assert code == 504 and "ACL does not let this dashboard publish cmd/config" in str(answer["error"])
        assert reloads == [] and cfg.read_bytes() == original

        def reload_later() -> None:  # the frame loop applies the reload a moment later
            assert wait_until(lambda: reloads != [], 5)
            command.reload_result(True, "1 line(s), 0 zone(s), classes car", load_config(cfg))

        thread = threading.Thread(target=reload_later)
        thread.start()
        code, answer = boards["surveyor"].editor.send("cam1", {"classes": ["car"]})  # type: ignore[union-attr]
        thread.join()
        assert code == 200 and answer["ok"] is True and "reloaded: 1 line(s)" in str(answer["message"])
        assert reloads == [{"cmd": "reload"}] and load_config(cfg).classes == ["car"]
        assert wait_until(lambda: (boards["dashboard"].state.device_config("cam1") or {}).get("classes") == ["car"], 10)
    finally:
        for board in boards.values():
            board.stop()
        mqtt.close()
        broker.stop()
