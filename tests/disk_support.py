"""A real, small tmpfs that tests fill to the brim (root + mount needed; callers skip otherwise)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


class FullDisk:
    """``mount -t tmpfs -o size=...`` at ``path``; ``fill()`` writes until ENOSPC, ``free()`` deletes the filler."""

    def __init__(self, path: Path, size_kb: int = 4096) -> None:
        self.path, self.size_kb = path, size_kb
        self.filler = path / "filler.bin"
        self.mounted = False

    @staticmethod
    def why_not() -> str | None:
        """None when this process can mount a tmpfs, else why not (for pytest.skip)."""
        if os.geteuid() != 0:
            return "mounting a tmpfs needs root"
        return None

    def mount(self) -> FullDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k", "tmpfs", str(self.path)],
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise PermissionError(f"mount -t tmpfs not permitted here: {proc.stderr.strip()}")
        self.mounted = True
        return self

    def fill(self) -> int:
        """Write the filler until the file system has not one byte left; return bytes written."""
        written = 0
        with open(self.filler, "ab", buffering=0) as fh:
            for chunk in (1 << 16, 4096, 512, 1):
                block = b"\0" * chunk
                while True:
                    try:
                        written += fh.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False
