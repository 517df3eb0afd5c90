"""`edge provision`: first boot that ends with a counting service, without a keyboard on the board.

Raspberry Pi OS (cloud-init images, 2025+): writes ``user-data``, ``network-config`` (netplan v2
with Wi-Fi) and ``meta-data`` onto the mounted boot partition and copies the bundle next to them;
cloud-init creates the admin user with your SSH key, joins the Wi-Fi and runs the bundle's
install.sh once. Jetson (JetPack 6, no cloud-init): writes a post-flash script (and a one-shot
unit to bake into the rootfs before flashing) that does the same with hostnamectl and nmcli.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from edgetally.errors import ConfigError

PI_BOOT_MOUNT = "/boot/firmware"  # where Raspberry Pi OS mounts the FAT boot partition
FIRSTBOOT = "/usr/local/sbin/edgetally-firstboot"
SCRUB = "/usr/local/sbin/edgetally-scrub-boot"

# The FAT boot partition is world-readable on Raspberry Pi OS. Once cloud-init has applied the
# Wi-Fi (netplan, /etc/netplan/50-cloud-init.yaml, root only) and written the MQTT password
# (/etc/edgetally/mqtt-password, 0600), the copies on the boot partition are replaced by the
# same files without the secrets, made by `edge provision` (cloud-init does not re-apply them:
# meta-data's instance-id is unchanged).
_SCRUB_SCRIPT = """#!/bin/sh
# Removes the Wi-Fi and MQTT passwords from the boot partition once cloud-init has applied them.
set -eu
boot=${1:-/boot/firmware}
for name in user-data network-config; do
  clean="$boot/edgetally/$name.scrubbed"
  [ -f "$clean" ] || continue
  cp "$clean" "$boot/$name.tmp"
  mv -f "$boot/$name.tmp" "$boot/$name"
  rm -f "$clean"
done
sync
echo "edgetally: Wi-Fi and MQTT passwords removed from $boot"
"""
_SCRUBBED_NOTE = (
    "# Passwords removed by edgetally after first boot. Applied copies: /etc/netplan/50-cloud-init.yaml,\n"
    "# /etc/edgetally/mqtt-password (both root only).\n"
)

_FIRSTBOOT_SCRIPT = """#!/bin/sh
# Installs an edgetally bundle (run once by cloud-init or edgetally-firstboot.service).
set -eu
bundle=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$bundle" -C "$work"
"$work/edgetally-bundle/install.sh"
echo "edgetally: installed from $bundle; check: systemctl status edgetally; /opt/edgetally/venv/bin/edge doctor"
"""


@dataclass(frozen=True)
class Board:
    hostname: str
    user: str
    ssh_keys: tuple[str, ...]
    wifi_ssid: str | None = None
    wifi_password: str | None = None
    wifi_country: str | None = None
    timezone: str | None = None
    mqtt_password: str | None = None


def read_ssh_keys(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each value is a public key or a file of them (~/.ssh/id_ed25519.pub)."""
    keys: list[str] = []
    for value in values:
        path = Path(value).expanduser()
        text = path.read_text() if not value.startswith(("ssh-", "ecdsa-", "sk-")) and path.is_file() else value
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    bad = [k for k in keys if not k.startswith(("ssh-", "ecdsa-", "sk-"))]
    if bad or not keys:
        raise ConfigError(f"--ssh-key: expected OpenSSH public keys, got {bad[0][:40] + '...' if bad else 'none'}")
    return tuple(keys)


def user_data(board: Board, bundle_path: str, packages: tuple[str, ...]) -> str:
    files = [
        {"path": FIRSTBOOT, "permissions": "0755", "owner": "root:root", "content": _FIRSTBOOT_SCRIPT},
        {"path": SCRUB, "permissions": "0755", "owner": "root:root", "content": _SCRUB_SCRIPT},
    ]
    if board.mqtt_password is not None:
        files.append(
            {
                "path": "/etc/edgetally/mqtt-password",
                "permissions": "0600",
                "owner": "root:root",
                "content": board.mqtt_password,
            }
        )
    runcmd: list[object] = [["systemctl", "enable", "--now", "ssh"]]
    if board.wifi_country:  # Raspberry Pi OS keeps Wi-Fi rfkill-blocked until a country is set
        runcmd.append(
            [
                "sh",
                "-c",
                (
                    f"command -v raspi-config >/dev/null && raspi-config nonint do_wifi_country "
                    f"{board.wifi_country} || true"
                ),
            ]
        )
    runcmd.append([SCRUB, PI_BOOT_MOUNT])  # before the install: the secrets are applied by now
    runcmd.append([FIRSTBOOT, bundle_path])
    config: dict[str, object] = {
        "hostname": board.hostname,
        "manage_etc_hosts": True,
        "users": [
            {
                "name": board.user,
                "groups": ["sudo", "video"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(board.ssh_keys),
            }
        ],
        "ssh_pwauth": False,
        "disable_root": True,
        "write_files": files,
        "runcmd": runcmd,
    }
    if board.timezone:
        config["timezone"] = board.timezone
    if packages:
        config["packages"] = list(packages)
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, width=120)


def scrubbed(board: Board) -> Board:
    """The same board without its secrets (what stays on the boot partition after first boot)."""
    return replace(board, wifi_password=None, mqtt_password=None)


def network_config(board: Board) -> str:
    net: dict[str, object] = {"version": 2, "ethernets": {"eth0": {"dhcp4": True, "optional": True}}}
    if board.wifi_ssid:
        point = {} if board.wifi_password is None else {"password": board.wifi_password}
        wlan: dict[str, object] = {"dhcp4": True, "optional": True, "access-points": {board.wifi_ssid: point}}
        if board.wifi_country:
            wlan["regulatory-domain"] = board.wifi_country
        net["wifis"] = {"wlan0": wlan}
    return yaml.safe_dump({"network": net}, sort_keys=False)


def meta_data(board: Board, user_data_text: str, network_text: str) -> str:
    # A new instance-id makes cloud-init run the once-per-instance modules again: derive it from
    # the content, so re-provisioning with other settings applies them and the same card does not.
    digest = hashlib.sha256((user_data_text + network_text).encode()).hexdigest()[:12]
    return yaml.safe_dump(
        {"instance-id": f"edgetally-{board.hostname}-{digest}", "local-hostname": board.hostname}, sort_keys=False
    )


def provision_pi(boot: Path, bundle: Path, board: Board, packages: tuple[str, ...]) -> list[Path]:
    if not boot.is_dir():
        raise ConfigError(f"--boot {boot}: not a directory (mount the SD card's boot partition)")
    if not (boot / "config.txt").is_file() and not (boot / "cmdline.txt").is_file():
        raise ConfigError(f"--boot {boot}: no config.txt or cmdline.txt: not a Raspberry Pi boot partition")
    (boot / "edgetally").mkdir(exist_ok=True)
    shutil.copyfile(bundle, boot / "edgetally" / bundle.name)
    bundle_path = f"{PI_BOOT_MOUNT}/edgetally/{bundle.name}"
    ud = user_data(board, bundle_path, packages)
    nc = network_config(board)
    clean = scrubbed(board)
    files = {
        "user-data": ud,
        "network-config": nc,
        "meta-data": meta_data(board, ud, nc),
        "edgetally/user-data.scrubbed": "#cloud-config\n"
        + _SCRUBBED_NOTE
        + user_data(clean, bundle_path, packages).removeprefix("#cloud-config\n"),
        "edgetally/network-config.scrubbed": _SCRUBBED_NOTE + network_config(clean),
    }
    for name, text in files.items():
        (boot / name).write_text(text)
    return [boot / name for name in files] + [boot / "edgetally" / bundle.name]


def jetson_script(board: Board, bundle_name: str) -> str:
    """Post-flash script for JetPack 6 (Ubuntu 22.04, NetworkManager); run as root on the Jetson."""
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        "# edgetally post-flash provisioning for JetPack 6 (made by `edge provision`).",
        "# Run as root on the Jetson, from the directory that holds the bundle.",
        "set -euo pipefail",
        'here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)',
        f"hostnamectl set-hostname {q(board.hostname)}",
        f"id -u {q(board.user)} >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo,video {q(board.user)}",
        f"install -d -m 0700 -o {q(board.user)} -g {q(board.user)} ~{board.user}/.ssh",
        f"cat >> ~{board.user}/.ssh/authorized_keys <<'KEYS'",
        *board.ssh_keys,
        "KEYS",
        f"chown {q(board.user)}: ~{board.user}/.ssh/authorized_keys && chmod 0600 ~{board.user}/.ssh/authorized_keys",
        "systemctl enable --now ssh",
    ]
    if board.wifi_ssid:
        if board.wifi_country:
            lines.append(f"iw reg set {q(board.wifi_country)} || true")
        lines += [
            "nmcli connection delete edgetally-wifi >/dev/null 2>&1 || true",
            (
                f"nmcli connection add type wifi ifname '*' con-name edgetally-wifi ssid {q(board.wifi_ssid)} "
                f"wifi-sec.key-mgmt wpa-psk wifi-sec.psk {q(board.wifi_password or '')} connection.autoconnect yes"
            ),
            "nmcli connection up edgetally-wifi || echo 'Wi-Fi not up yet; it will retry' >&2",
        ]
    if board.timezone:
        lines.append(f"timedatectl set-timezone {q(board.timezone)}")
    if board.mqtt_password is not None:
        lines += [
            "install -d -m 0755 /etc/edgetally",
            "umask 077",
            f"printf '%s' {q(board.mqtt_password)} > /etc/edgetally/mqtt-password",
        ]
    lines += [
        (
            "command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null "
            "|| { apt-get update && apt-get install -y python3-venv; }"
        ),
        "work=$(mktemp -d)",
        "trap 'rm -rf \"$work\"' EXIT",
        f'tar -xzf "$here/{bundle_name}" -C "$work"',
        '"$work/edgetally-bundle/install.sh"',
        "touch /var/lib/edgetally-provisioned",
        "# this script holds the Wi-Fi and MQTT passwords: applied now, so it goes",
        'rm -f -- "${BASH_SOURCE[0]}"',
        "echo 'edgetally: provisioned; systemctl status edgetally'",
    ]
    return "\n".join(lines) + "\n"


_JETSON_UNIT = """[Unit]
Description=edgetally first-boot provisioning (runs once)
ConditionPathExists=!/var/lib/edgetally-provisioned
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/opt/edgetally-provision/edgetally-postflash.sh
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def provision_jetson(out: Path, bundle: Path, board: Board) -> list[Path]:
    """``out`` becomes /opt/edgetally-provision on the Jetson: copy it into Linux_for_Tegra/rootfs
    before flashing (and enable the unit), or scp it after flashing and run the script."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, out / bundle.name)
    script = out / "edgetally-postflash.sh"
    script.write_text(jetson_script(board, bundle.name))
    script.chmod(0o700)  # it holds the Wi-Fi password
    unit = out / "edgetally-firstboot.service"
    unit.write_text(_JETSON_UNIT)
    return [script, unit, out / bundle.name]
