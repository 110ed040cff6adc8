"""Row ids as they arrive from outside (paths, query strings): one rule for what can be a row id."""

from __future__ import annotations

ID_MAX = 2**63 - 1  # a 64-bit primary key


def parse_id(value: str) -> int | None:
    """The id written in ``value`` (ASCII digits, at most ID_MAX), or None. str.isdigit() alone also
    takes '²' and other Unicode digits, which int() then refuses."""
    if not value or len(value) > 19 or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= ID_MAX else None


class IdConverter:
    """``<id:pk>`` in a URL: like ``<int:pk>``, but an id past 64 bits does not match (a 404) instead
    of reaching the database (a 500)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError("not a row id")
        return number

    def to_url(self, value) -> str:
        return str(int(value))
