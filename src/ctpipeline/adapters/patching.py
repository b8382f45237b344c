"""An attribute of a library swapped for the duration of a block: how the adapters skip costs of GX and Evidently
that change no result (``adapters.gx.speedups``, ``adapters.evidently.drift``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["swapped"]


@contextmanager
def swapped(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """`owner.name` set to `replacement` inside the block and restored after it, even on an error. Nothing is
    patched when `owner` does not itself define `name` (a later version of the library renamed it: only slower).
    The callers hold their library's lock: the swap is seen by every thread of the process."""
    if name not in vars(owner):
        yield
        return
    original = vars(owner)[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)
