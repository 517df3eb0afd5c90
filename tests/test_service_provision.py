"""`edge provision` output checked by cloud-init itself (Debian's cloud-init package)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgetally.cli.provision import provision_command

CLOUD_INIT = shutil.which("cloud-init")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGd0xkL1r2n7lF1bqkYqf2iR0bH7yq3s4Jm0y4cZ0s4a me@laptop"


@pytest.fixture
def pi_boot(tmp_path: Path) -> Path:
    boot = tmp_path / "bootfs"
    boot.mkdir()
    (boot / "config.txt").write_text("camera_auto_detect=1\n")
    (boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=x rootwait\n")
    return boot


def provision(tmp_path: Path, *args: str) -> Path:
    bundle = tmp_path / "edgetally-rpi5.tar.gz"
    bundle.write_bytes(b"not really a tarball")
    (tmp_path / "wifi.txt").write_text('p@ss "word": #1\n')
    (tmp_path / "mqtt.txt").write_text("s3cret\n")
    (tmp_path / "key.pub").write_text(KEY + "\n")
    result = CliRunner().invoke(
        provision_command,
        [
            "--bundle",
            str(bundle),
            "--hostname",
            "pole1",
            "--ssh-key",
            str(tmp_path / "key.pub"),
            "--wifi-ssid",
            "Depot Wi-Fi",
            "--wifi-password-file",
            str(tmp_path / "wifi.txt"),
            "--wifi-country",
            "gb",
            "--mqtt-password-file",
            str(tmp_path / "mqtt.txt"),
            "--timezone",
            "Europe/London",
            *args,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return bundle


def test_pi_files_have_the_settings(pi_boot: Path, tmp_path: Path) -> None:
    provision(tmp_path, "--boot", str(pi_boot))
    ud_text = (pi_boot / "user-data").read_text()
    assert ud_text.startswith("#cloud-config\n")
    ud = yaml.safe_load(ud_text)
    assert ud["hostname"] == "pole1" and ud["users"][0]["ssh_authorized_keys"] == [KEY]
    assert ud["runcmd"][-1] == ["/usr/local/sbin/edgetally-firstboot", "/boot/firmware/edgetally/edgetally-rpi5.tar.gz"]
    assert {
        "path": "/etc/edgetally/mqtt-password",
        "permissions": "0600",
        "owner": "root:root",
        "content": "s3cret",
    } in ud["write_files"]
    wifi = yaml.safe_load((pi_boot / "network-config").read_text())["network"]["wifis"]["wlan0"]
    assert (
        wifi["access-points"] == {"Depot Wi-Fi": {"password": 'p@ss "word": #1'}} and wifi["regulatory-domain"] == "GB"
    )
    meta = yaml.safe_load((pi_boot / "meta-data").read_text())
    assert meta["local-hostname"] == "pole1" and meta["instance-id"].startswith("edgetally-pole1-")
    assert (pi_boot / "edgetally/edgetally-rpi5.tar.gz").read_bytes() == b"not really a tarball"


def test_refuses_a_directory_that_is_not_a_pi_boot_partition(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "b.tar.gz").write_bytes(b"x")
    result = CliRunner().invoke(
        provision_command,
        [
            "--boot",
            str(tmp_path / "empty"),
            "--bundle",
            str(tmp_path / "b.tar.gz"),
            "--hostname",
            "h",
            "--ssh-key",
            KEY,
        ],
    )
    assert result.exit_code != 0 and "not a Raspberry Pi boot partition" in str(result.exception)


@pytest.mark.skipif(CLOUD_INIT is None, reason="cloud-init not installed (apt-get install -y cloud-init)")
def test_cloud_init_accepts_user_data(pi_boot: Path, tmp_path: Path) -> None:
    provision(tmp_path, "--boot", str(pi_boot))
    result = subprocess.run(
        [CLOUD_INIT, "schema", "--config-file", str(pi_boot / "user-data")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(CLOUD_INIT is None, reason="cloud-init not installed (apt-get install -y cloud-init)")
def test_cloud_init_parses_and_renders_network_config(pi_boot: Path, tmp_path: Path) -> None:
    """cloud-init 22.4 has no schema for network-config; net-convert parses it the way first boot
    does and renders netplan, which must carry the Wi-Fi through."""
    provision(tmp_path, "--boot", str(pi_boot))
    out = tmp_path / "rendered"
    result = subprocess.run(
        [
            CLOUD_INIT,
            "devel",
            "net-convert",
            "-p",
            str(pi_boot / "network-config"),
            "-k",
            "yaml",
            "-D",
            "debian",
            "-O",
            "netplan",
            "-d",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = yaml.safe_load(next(out.rglob("*.yaml")).read_text())["network"]
    assert rendered["wifis"]["wlan0"]["access-points"]["Depot Wi-Fi"]["password"] == 'p@ss "word": #1'
    assert rendered["ethernets"]["eth0"]["dhcp4"] is True


def test_jetson_kit_is_valid_bash_with_the_settings(tmp_path: Path) -> None:
    provision(tmp_path, "--target", "jetson", "--out", str(tmp_path / "kit"))
    script = tmp_path / "kit/edgetally-postflash.sh"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "hostnamectl set-hostname pole1" in text and KEY in text and "ssid 'Depot Wi-Fi'" in text
    assert script.stat().st_mode & 0o777 == 0o700 and (tmp_path / "kit/edgetally-rpi5.tar.gz").is_file()
    assert (
        "ExecStart=/opt/edgetally-provision/edgetally-postflash.sh"
        in (tmp_path / "kit/edgetally-firstboot.service").read_text()
    )


def _files(boot: Path) -> dict[str, str]:
    return {
        str(p.relative_to(boot)): p.read_text(errors="replace")
        for p in boot.rglob("*")
        if p.is_file() and not p.name.endswith(".tar.gz")
    }


def test_pi_passwords_leave_the_boot_partition_after_first_boot(pi_boot: Path, tmp_path: Path) -> None:
    """Runs the scrub step of user-data's runcmd (the script cloud-init writes) on the boot partition."""
    provision(tmp_path, "--boot", str(pi_boot))
    ud = yaml.safe_load((pi_boot / "user-data").read_text())
    script = next(f["content"] for f in ud["write_files"] if f["path"] == "/usr/local/sbin/edgetally-scrub-boot")
    assert ["/usr/local/sbin/edgetally-scrub-boot", "/boot/firmware"] in ud["runcmd"]
    assert any("s3cret" in t or 'p@ss "word"' in t for t in _files(pi_boot).values())  # first boot needs them
    (tmp_path / "scrub.sh").write_text(script)
    subprocess.run(["sh", str(tmp_path / "scrub.sh"), str(pi_boot)], check=True, capture_output=True)
    after = _files(pi_boot)
    leaks = [name for name, text in after.items() if "s3cret" in text or "p@ss" in text]
    assert leaks == [], f"passwords still on the boot partition in {leaks}"
    assert sorted(after) == ["cmdline.txt", "config.txt", "meta-data", "network-config", "user-data"]
    clean = yaml.safe_load(after["user-data"])
    assert after["user-data"].startswith("#cloud-config\n") and clean["runcmd"] == ud["runcmd"]
    wifi = yaml.safe_load(after["network-config"])["network"]["wifis"]["wlan0"]
    assert wifi["access-points"] == {"Depot Wi-Fi": {}}
    if CLOUD_INIT is not None:
        result = subprocess.run(
            [CLOUD_INIT, "schema", "--config-file", str(pi_boot / "user-data")],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_jetson_kit_deletes_its_secrets_once_applied(tmp_path: Path) -> None:
    provision(tmp_path, "--target", "jetson", "--out", str(tmp_path / "kit"))
    lines = (tmp_path / "kit/edgetally-postflash.sh").read_text().splitlines()
    assert lines.index('rm -f -- "${BASH_SOURCE[0]}"') > lines.index("touch /var/lib/edgetally-provisioned")
