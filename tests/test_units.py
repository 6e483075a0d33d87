"""Sizes written in vars and flags parse as users expect; nonsense is refused."""


import pytest

from maintenance.errors import ConfigError
from maintenance.units import format_duration, format_size, parse_size


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
