"""MQTT sink settings (pydantic, ``extra="forbid"``) and broker URL parsing. No I/O in validators:
secrets and paths are read by ``resolve_password()`` / ``resolve_outbox_path()`` at open time."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgetally.errors import ConfigError
from edgetally.statedir import state_dir

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttUrl:
    """``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...`` (TLS, default port 8883).

    Raises ConfigError with what was expected and what was given."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"MQTT URL {url!r}: expected scheme mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"MQTT URL {url!r}: expected no path, query or fragment (set the topic prefix separately)")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise ConfigError(f"MQTT URL {url!r}: bad port ({exc})") from None
    if not parts.hostname:
        raise ConfigError(f"MQTT URL {url!r}: expected a host name")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return MqttUrl(parts.hostname, port, parts.scheme == "mqtts", user, password)


class MqttSettings(BaseModel):
    """The ``mqtt:`` block of the device config (and ``--mqtt URL`` on the command line)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "mqtt://localhost:1883"
    username: str | None = None
    password_file: Path | None = None
    password_credential: str | None = Field(
        default=None, description="systemd credential name, read from $CREDENTIALS_DIRECTORY/<name>"
    )
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_insecure: bool = False
    client_id: str | None = None
    prefix: str = "edgetally"
    device_id: str | None = None
    qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    outbox: Path | None = None
    outbox_max_events: int = Field(default=100_000, ge=1)
    outbox_sync: Literal["full", "normal"] = "full"
    outbox_retry_s: float = Field(default=5.0, gt=0, description="while the disk fails: seconds between write retries")
    max_inflight: int = Field(default=200, ge=1, le=10_000)
    stats_interval_s: float = Field(default=5.0, gt=0)  # seconds between stats messages
    # seconds between annotated JPEG snapshots (<prefix>/<device>/snapshot, retained, QoS 0): what the
    # dashboard shows and its line editor draws on; 0 = none
    snapshot_interval_s: float = Field(default=10.0, ge=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    close_timeout_s: float = Field(default=5.0, ge=0)
    degraded_camera_age_s: float = Field(default=10.0, gt=0)
    homeassistant: bool = True
    homeassistant_prefix: str = "homeassistant"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parse_mqtt_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("password_credential")
    @classmethod
    def _check_credential(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in (".", "..")):
            raise ValueError(f"expected a systemd credential name (no '/'), got {value!r}")
        return value

    @property
    def broker(self) -> MqttUrl:
        return parse_mqtt_url(self.url)

    @property
    def tls_enabled(self) -> bool:
        return self.broker.tls or self.tls_ca is not None or self.tls_cert is not None

    def resolve_device_id(self, fallback: str | None = None) -> str:
        return self.device_id or fallback or socket.gethostname()

    def resolve_username(self) -> str | None:
        return self.username or self.broker.username

    def resolve_password(self) -> str | None:
        """From the systemd credential, else the file, else the URL. Trailing newline stripped."""
        if self.password_credential:
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if not creds:
                raise ConfigError(
                    f"mqtt.password_credential {self.password_credential!r}: $CREDENTIALS_DIRECTORY is not set "
                    "(set LoadCredential= in the systemd unit, or use mqtt.password_file)"
                )
            return read_secret(Path(creds) / self.password_credential, "mqtt.password_credential")
        if self.password_file:
            return read_secret(self.password_file, "mqtt.password_file")
        return self.broker.password

    def new_client(self, client_id: str) -> Any:
        """A paho 2.x client with this broker's credentials and TLS applied (not yet connected)."""
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        user = self.resolve_username()
        if user is not None:
            client.username_pw_set(user, self.resolve_password())
        if self.tls_enabled:
            client.tls_set(ca_certs=_opt(self.tls_ca), certfile=_opt(self.tls_cert), keyfile=_opt(self.tls_key))
            client.tls_insecure_set(self.tls_insecure)
        return client

    def resolve_outbox_path(self, device_id: str) -> Path:
        """Explicit path, else systemd's $STATE_DIRECTORY, else ~/.local/state/edgetally."""
        if self.outbox is not None:
            return self.outbox
        return state_dir() / f"outbox-{device_id}.sqlite"


def _opt(path: Path | None) -> str | None:
    return None if path is None else str(path)


def read_secret(path: Path, key: str) -> str:
    """A secret file's text without its trailing newline; ConfigError naming ``key`` when unreadable."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None
