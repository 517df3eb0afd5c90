"""`edge broker`: a real amqtt broker in a subprocess; clients come and go; SIGTERM ends it cleanly
without a log line per client event."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mqtt_support import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM], ids=["sigterm"]
)  # Ctrl-C: the same helper, tests/test_demo_command.py
def test_broker_serves_quietly_and_stops_on_a_signal(signum: int) -> None:
    pytest.importorskip("amqtt", reason="needs the broker extra")
    import paho.mqtt.client as mqtt

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgetally", "broker", "--port", str(port)],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and "listening on mqtt://127.0.0.1" in proc.stdout.readline()
        got: list[bytes] = []
        for i in range(5):  # sessions opening and closing: amqtt logs several INFO lines for each
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t{i}")
            client.on_message = lambda _c, _u, msg: got.append(msg.payload)
            client.connect("127.0.0.1", port)
            client.loop_start()
            client.subscribe("t/#", qos=1)
            client.publish("t/x", f"m{i}", qos=1).wait_for_publish(5)
            assert wait_until(lambda n=i: len(got) == n + 1, timeout=10)
            client.disconnect()
            client.loop_stop()
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert got == [f"m{i}".encode() for i in range(5)]
    lines = [line for line in err.splitlines() if line.strip()]
    assert not [line for line in lines if " INFO amqtt" in line or " INFO transitions" in line], err
    assert len(lines) <= 3, err  # the broker's start line, not one per client event
