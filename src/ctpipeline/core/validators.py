"""Small checks shared by the config models' validators (pydantic ``field_validator`` bodies)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

__all__ = ["no_duplicates"]


def no_duplicates(values: Sequence[Hashable], what: str) -> list:
    """`values` as a list, or ValueError ``"<what> listed more than once: [sorted duplicates]"``."""
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{what} listed more than once: {dupes}")
    return list(values)
