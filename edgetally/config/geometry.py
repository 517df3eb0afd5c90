"""Counting geometry checked against the real frame size, known only once the first frame arrives.

A line or zone drawn for another resolution (a config made on a 1080p snapshot, a camera that
delivers 640x360) counts nothing without a word. ``geometry_warnings`` says so; the pipeline logs
each message at the first frame (and after a resolution change).
"""

from __future__ import annotations

from edgetally.config.models import RunSettings


def geometry_warnings(settings: RunSettings, width: int, height: int) -> list[str]:
    """One message per line or zone that lies wholly or partly outside a ``width`` x ``height`` frame."""
    size = f"{width}x{height}"
    out: list[str] = []
    for line in settings.lines:
        (x1, y1), (x2, y2) = line.points
        inside = _inside_fraction(x1, y1, x2, y2, width, height)
        where = f"line {line.name!r} ({x1:g},{y1:g})-({x2:g},{y2:g})"
        if inside == 0.0:
            out.append(f"{where} lies outside the {size} frame: it can never count (drawn for another resolution?)")
        elif inside < 0.999:
            out.append(f"{where} reaches outside the {size} frame: only {inside:.0%} of it is in view")
    for zone in settings.zones:
        xs, ys = [p[0] for p in zone.polygon], [p[1] for p in zone.polygon]
        if max(xs) <= 0 or max(ys) <= 0 or min(xs) >= width or min(ys) >= height:
            out.append(
                f"zone {zone.name!r} lies outside the {size} frame: it can never count (drawn for another resolution?)"
            )
    return out


def _inside_fraction(x1: float, y1: float, x2: float, y2: float, width: float, height: float) -> float:
    """Fraction of the segment inside [0, width] x [0, height] (Liang-Barsky clipping)."""
    t0, t1 = 0.0, 1.0
    dx, dy = x2 - x1, y2 - y1
    for p, q in ((-dx, x1), (dx, width - x1), (-dy, y1), (dy, height - y1)):
        if p == 0:
            if q < 0:
                return 0.0
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return 0.0
    return t1 - t0
