"""Framing shared by every protocol: HTTP/1.1 chunks and the interning of wire variants."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def identity(data: bytes) -> bytes:
    return data


_interned: weakref.WeakValueDictionary[tuple[object, ...], object] = (
    weakref.WeakValueDictionary())


V = TypeVar("V")


def intern(key: tuple[object, ...], kind: type[V], make: Callable[[], V]) -> V:
    """The live variant of ``key``, or a new one from ``make`` (kept while someone uses it)."""
    found = _interned.get(key)
    if isinstance(found, kind):
        return found
    variant = make()
    _interned[key] = variant
    return variant
