"""The values the public Python API returns (``livehub.Hub`` and ``livehub.Client`` alike).

They are plain frozen dataclasses with no behaviour, so code written against an embedded hub
works unchanged against a remote one.  Payloads come back as they were published: a JSON value
as the decoded value, a ``str`` as ``str``, ``bytes`` as ``bytes`` (from a remote hub, whose
JSON API cannot carry bytes, ``Client`` returns a binary payload as its base64 text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Published:
    """Where a publication was stored: its position in the channel's stream."""

    channel: str
    offset: int
    """The publication's number in the channel (1, 2, 3... within one epoch)."""
    epoch: str
    """Changes when the channel's history is lost (a broker restart): a new numbering."""
    cursor: str
    """The position as a livehub cursor: ``Last-Event-ID``/``?since=`` of the plain
    endpoints resume right after this publication."""


@dataclass(frozen=True, slots=True)
class Message:
    """One publication read from history."""

    channel: str
    data: Any
    """The payload as published: a JSON value, ``str`` or ``bytes``."""
    offset: int
    event: str | None = None
    """The SSE event name it was published with, if any."""


@dataclass(frozen=True, slots=True)
class History:
    """The retained publications of a channel, oldest first, and the channel's position."""

    channel: str
    messages: list[Message]
    offset: int
    """The offset of the newest publication (0: none yet)."""
    epoch: str
    cursor: str
    """The newest position as a cursor: a subscriber resuming from it gets what follows."""


@dataclass(frozen=True, slots=True)
class Member:
    """A client subscribed to a channel with presence."""

    client: str
    """Connection id, unique across the cluster."""
    user: str
    """User id (``""``: anonymous)."""
    info: Any = None
    """The JSON ``info`` attached to the connection (its token's ``info`` claim), if any."""
