"""Frame sources whose decoder really fails, for the capture-isolation tests and benchmarks.faults.

Each is an ``opener(uri, options)`` (the signature of ``edgetally.capture.open_direct``) that
opens the real source and fails inside the decoding process after some frames: a real heap
corruption that glibc aborts on (like the AVI whose decoder hit ``malloc_consolidate(): invalid
chunk size``), a real SIGSEGV, a hang, a leak. Used in-process they take the process down; as
the opener of an IsolatedSource they take down only its decoder process.
"""

from __future__ import annotations

import ctypes
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from edgetally.capture import CaptureOptions, FrameSource, open_direct
from edgetally.structures import Frame

FAIL_AT = 40  # frames delivered before the decoder fails


def _corrupt_heap() -> None:
    """Overwrite a malloc'd block's own chunk header (an underrun), then free it: glibc's checks in
    free() abort the process (SIGABRT), as libav's did on the damaged AVI. Overrunning into the
    *next* block is not reliable: whether that block is adjacent depends on the heap's history."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    block = libc.malloc(64)
    ctypes.memset(block - 8, 0x41, 8)  # the size field just before the block: garbage
    libc.free(block)
    raise RuntimeError("glibc did not notice the heap corruption")


def _segfault() -> None:
    ctypes.string_at(0)


def _hang() -> None:
    time.sleep(3600)


class _Failing:
    """Delegates to a real source; calls ``fail()`` instead of delivering frame ``at``."""

    def __init__(self, source: FrameSource, at: int, fail) -> None:
        self._source, self._at, self._fail, self._n = source, at, fail, 0
        self.name, self.is_live = source.name, source.is_live
        self.fps, self.frame_count = source.fps, source.frame_count
        self._leak: list[bytearray] = []

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = next(self._source)
        if self._n >= self._at:
            self._fail(self)
        self._n += 1
        return frame

    @property
    def stats(self):
        return self._source.stats

    def close(self) -> None:
        self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _leak(source: _Failing) -> None:
    source._leak.append(bytearray(64 << 20))  # 64 MB more per frame, touched so it is resident
    source._leak[-1][::4096] = b"\1" * len(source._leak[-1][::4096])


def heap_corruption(uri: str, options: CaptureOptions) -> _Failing:
    return _Failing(open_direct(uri, options), FAIL_AT, lambda s: _corrupt_heap())


def segfault(uri: str, options: CaptureOptions) -> _Failing:
    return _Failing(open_direct(uri, options), FAIL_AT, lambda s: _segfault())


def hang(uri: str, options: CaptureOptions) -> _Failing:
    return _Failing(open_direct(uri, options), FAIL_AT, lambda s: _hang())


def leak(uri: str, options: CaptureOptions) -> _Failing:
    return _Failing(open_direct(uri, options), 5, _leak)


def live_crash_every_5(uri: str, options: CaptureOptions) -> _Failing:
    """A live decoder that corrupts its heap after every 5 frames it delivers (each restart too)."""
    return _Failing(open_direct(uri, options), 5, lambda s: _corrupt_heap())


def png_bomb(path: Path, width: int, height: int) -> None:
    """A PNG whose header says width x height, with a little compressed data: 1 KB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )
