"""A real PostgreSQL server for tests and benchmarks: initdb + pg_ctl in a temp dir, on a free
loopback port, as an unprivileged user (PostgreSQL refuses to run as root: under root the server
runs as ``postgres``, the Debian package's user). ``POSTGRES_BIN`` is None when it is not installed
(scripts/test.sh installs it with apt when it can); tests then skip with a reason."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from mqtt_support import free_port


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


POSTGRES_BIN = _bindir()


def why_no_postgres() -> str | None:
    """None when a server can start here, else the reason (for pytest.skip)."""
    if POSTGRES_BIN is None:
        return "PostgreSQL (initdb/pg_ctl) not installed; scripts/test.sh installs it with apt as root"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'edgetally[collect]')"
    return None


class Postgres:
    """One server (one data dir). ``durable=False`` turns fsync off: fine for tests, not for figures."""

    def __init__(self, port: int | None = None, durable: bool = False) -> None:
        if POSTGRES_BIN is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.port = port or free_port()
        self.durable = durable
        self.test_db = "tests"  # the database the test fixtures make their schemas in
        self.base = Path(tempfile.mkdtemp(prefix="edgetally-pg-"))
        self.data = self.base / "data"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            info = pwd.getpwnam("postgres")
            os.chown(self.base, info.pw_uid, info.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "edgetally", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        assert POSTGRES_BIN is not None
        proc = subprocess.run(
            [str(POSTGRES_BIN / tool), *args],
            check=False,
            user=self._user,
            capture_output=True,
            text=True,
            cwd=self.base,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")

    def start(self) -> Postgres:
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=50" + (
            "" if self.durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "server.log"), "-w", "-t", "60", "start"
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect clients, shut down cleanly; ``immediate``: like a crash."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://edgetally@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
