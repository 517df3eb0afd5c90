"""Image dimensions from the file header, without decoding: refuse a decompression bomb (a 1.2 MB
PNG of 20000 x 20000 decodes to 1.2 GB of pixels, several GB on the way) before it kills a Pi.

PNG, JPEG, BMP, WebP and TIFF: the formats an image folder may hold. None for anything else
(the decoder then decides).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

MAX_IMAGE_PIXELS = 50_000_000  # 50 MP: above any camera a counter uses; 150 MB as BGR
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header, or None when the format is unknown or the header is cut."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head.startswith(b"\xff\xd8"):
                return _jpeg(fh)
            if head.startswith(b"BM") and len(head) >= 26:
                width, height = struct.unpack("<ii", head[18:26])
                return abs(width), abs(height)
            if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                return _webp(head + fh.read(8))
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff(fh, "<" if head[:2] == b"II" else ">")
    except (OSError, struct.error):
        return None
    return None


def _jpeg(fh: BinaryIO) -> tuple[int, int] | None:
    fh.seek(2)
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            fh.seek(-1, 1)
            continue
        if 0xD0 <= kind <= 0xD9 or kind == 0x01:  # markers without a length
            continue
        (length,) = struct.unpack(">H", fh.read(2))
        if kind in _JPEG_SOF:
            height, width = struct.unpack(">xHH", fh.read(5))
            return width, height
        fh.seek(length - 2, 1)


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        b = head[21:25]
        return 1 + (b[0] | (b[1] & 0x3F) << 8), 1 + (b[1] >> 6 | b[2] << 2 | (b[3] & 0x0F) << 10)
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    return None


def _tiff(fh: BinaryIO, order: str) -> tuple[int, int] | None:
    fh.seek(4)
    (offset,) = struct.unpack(order + "I", fh.read(4))
    fh.seek(offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    found: dict[int, int] = {}
    for _ in range(min(count, 512)):
        tag, kind, _n, value = struct.unpack(order + "HHI4s", fh.read(12))
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
    return (found[256], found[257]) if 256 in found and 257 in found else None


def too_big(width: int, height: int, limit: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why ``width`` x ``height`` is refused, or None when it is fine."""
    if width * height <= limit:
        return None
    return (
        f"{width}x{height} = {width * height / 1e6:.0f} MP is over the {limit / 1e6:.0f} MP limit "
        f"(decoding it would take over {width * height * 3 / 1e9:.1f} GB)"
    )
