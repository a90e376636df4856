from __future__ import annotations

import pytest

from kernelsvc.supervisor.limits import format_bytes, parse_size, resolve_limits


@pytest.mark.parametrize(("text", "size"), [
    ("2G", 2 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)),
    ("100k", 100 * 2**10), ("1048576", 2**20), (" 3 GB ", 3 * 2**30),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "2X", "-1G"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_bytes():
    assert format_bytes(2.1 * 2**30) == "2.1 GiB"
    assert format_bytes(400 * 2**20) == "400 MiB"
    assert format_bytes(512) == "512 B"


def test_flag_beats_cgroup():
    limits = resolve_limits("1G", None, 3.0)
    assert limits.memory_bytes == 2**30 and limits.memory_source == "flag"
    assert limits.describe()["memory_limit"] == "1.0 GiB"
