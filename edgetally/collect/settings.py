"""`edge collect` settings (pydantic, ``extra="forbid"``): broker, database, subscription, spool."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgetally.collect.messages import MAX_PAYLOAD_BYTES
from edgetally.sinks.mqtt_settings import MqttSettings
from edgetally.sinks.topics import Topics, sanitize_segment


def state_dir() -> Path:
    """systemd's $STATE_DIRECTORY, else ~/.local/state/edgetally (where the runner keeps its outbox)."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path.home() / ".local" / "state" / "edgetally"


class CollectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mqtt: MqttSettings = Field(default_factory=MqttSettings)  # url, credentials, TLS, prefix, keepalive
    db_url: str | None = None  # default: sqlite:///<state dir>/collect.db
    share_group: str | None = None  # $share/<group>/...: collectors in one group split the events (docs/collect.md)
    client_id: str | None = None  # default edgetally-collect-<hostname>; must stay the same across restarts
    session_expiry_s: int = Field(default=7 * 86400, ge=0, le=2**32 - 1)  # how long the broker queues for us
    receive_maximum: int = Field(default=4000, ge=10, le=65535)  # unacknowledged messages in flight to us
    spool: Path | None = None  # default: <state dir>/collect-spool-<client id>.sqlite
    spool_max_messages: int = Field(default=1_000_000, ge=1)
    batch_max: int = Field(default=1000, ge=1, le=100_000)
    batch_wait_s: float = Field(default=0.05, gt=0, le=10)  # linger for a fuller batch
    gap_grace_s: float = Field(default=30.0, ge=0)
    gap_check_s: float = Field(default=5.0, gt=0)
    max_payload_bytes: int = Field(default=MAX_PAYLOAD_BYTES, ge=1024)
    db_retry_max_s: float = Field(default=30.0, gt=0)
    log_interval_s: float = Field(default=60.0, gt=0)

    @field_validator("share_group")
    @classmethod
    def _check_group(cls, value: str | None) -> str | None:
        if value is not None and (not value or sanitize_segment(value) != value):
            raise ValueError(f"expected a share group of A-Z a-z 0-9 _ . - (no '/', '+', '#'), got {value!r}")
        return value

    def resolved_client_id(self) -> str:
        return self.client_id or self.mqtt.client_id or f"edgetally-collect-{sanitize_segment(socket.gethostname())}"

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{state_dir() / 'collect.db'}"

    def resolved_spool(self) -> Path:
        return self.spool or state_dir() / f"collect-spool-{sanitize_segment(self.resolved_client_id())}.sqlite"

    @property
    def prefix(self) -> str:
        return Topics.build(self.mqtt.prefix, "_").prefix

    def subscriptions(self) -> list[str]:
        """Events and intervals through the shared subscription (load split between collectors);
        device state plainly (retained: every collector gets the current value when it subscribes)."""
        share = f"$share/{self.share_group}/" if self.share_group else ""
        return [
            f"{share}{self.prefix}/+/events",
            f"{share}{self.prefix}/+/intervals",
            f"{self.prefix}/+/availability",
            f"{self.prefix}/+/state",
            f"{self.prefix}/+/stats",
        ]

    def describe(self) -> dict[str, Any]:
        return {"client_id": self.resolved_client_id(), "share_group": self.share_group, "prefix": self.prefix}
