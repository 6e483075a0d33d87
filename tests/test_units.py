"""Durations and sizes written in vars and flags parse as users expect; nonsense is refused."""

from datetime import timedelta

import pytest

from maintenance.errors import ConfigError
from maintenance.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("6h", 21600),
        ("14d", 1209600),
        ("2w", 1209600),
        ("1h30m", 5400),
        (90, 90),
        ("120", 120),
        ("1.5h", 5400),
    ],
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "-3d", "3x", True, -1])
def test_bad_durations_name_the_key(text) -> None:
    with pytest.raises(ConfigError, match="key 'delete_after'"):
        parse_duration(text, "key 'delete_after'")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GB", 2 * 10**9),
        ("512MiB", 512 * 2**20),
        ("10k", 10_000),
        (4096, 4096),
        ("1.5 GiB", 3 * 2**29),
    ],
)
def test_sizes(text, size) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "2 GX", "-1", True])
def test_bad_sizes_are_refused(text) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)


def test_formatting() -> None:
    assert format_size(1536 * 2**20) == "1.5 GiB"
    assert format_size(12) == "12 B"
    assert format_duration(200) == "3m20s"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d4h"
