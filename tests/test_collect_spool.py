"""The collector's spool: durable, ordered, bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetally.collect.spool import Spool


def test_spooled_messages_survive_a_restart_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_messages=10)
    spool.append([("edgetally/d/events", f"{i}".encode(), float(i)) for i in range(6)])
    spool.close()
    again = Spool(tmp_path / "s.sqlite", max_messages=10)
    assert (again.depth, again.room()) == (6, 4)
    first = again.oldest(4)
    assert [e.payload for e in first] == [b"0", b"1", b"2", b"3"]
    again.remove_through(first[-1].id)
    assert [e.payload for e in again.oldest(10)] == [b"4", b"5"] and again.depth == 2
    again.close()


def test_the_spool_refuses_a_nonsense_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        Spool(tmp_path / "s.sqlite", max_messages=0)
