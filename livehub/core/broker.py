"""The broker interface: where publications are stored, positioned and delivered to every node.

Every publication takes one path, the same on one process and in a cluster::

    publisher -> Broker.publish -> (store + position, atomically) -> every node's
    BrokerHandler.on_publication -> Hub fan-out -> subscribers

Implementations: ``MemoryBroker`` (one process, embedded default) and the Redis broker.  Both
must pass the contract suite in ``tests/core/test_broker_contract.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from livehub.core.channels import ChannelOptions
from livehub.core.presence import ClientInfo
from livehub.wire.cursor import StreamPosition
from livehub.wire.payload import PayloadKind


@dataclass(frozen=True, slots=True)
class Publication:
    """One message of one channel, as stored and delivered."""

    channel: str
    data: bytes
    kind: PayloadKind
    position: StreamPosition
    event: str | None = None
    time: float = 0.0
    """Wall-clock time (seconds since the epoch) when the broker stored it."""
    info: ClientInfo | None = None
    """The publishing client, when a client published it."""


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """The answer to a history read.

    ``publications`` are those after ``since`` (oldest first), ``top`` is the position of the
    newest publication of the stream (offset 0 if there is none yet), and ``recovered`` says
    whether ``publications`` cover everything after ``since``: False when the epoch changed or
    the oldest needed publication was evicted or expired.
    """

    publications: Sequence[Publication]
    top: StreamPosition
    recovered: bool


class BrokerHandler(Protocol):
    """What a broker calls on each node (implemented by ``Hub``)."""

    def on_publication(self, pub: Publication) -> None:
        """A publication for a channel this node subscribed to.

        Called in offset order per channel, at most once per publication per node.  Must not
        block or await: fan-out writes to buffers only.
        """

    def on_join(self, channel: str, info: ClientInfo) -> None:
        """A client joined ``channel`` somewhere in the cluster (join/leave pushes)."""

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        """A client left ``channel`` somewhere in the cluster."""

    def on_control(self, data: bytes) -> None:
        """A node-to-node control message (disconnect a user, route an emulation request...),
        delivered to every node including the sender."""


class Broker(Protocol):
    """Stores publications, assigns positions and delivers them to every subscribed node.

    Guarantees every implementation gives (checked by the contract suite):

    * ``publish`` assigns the next offset of the channel's stream in the same atomic step that
      appends it to history; offsets of a stream are 1, 2, 3... with no gap and no repeat.
    * Delivery: every node subscribed to the channel when ``publish`` returns gets the
      publication through ``on_publication`` exactly once, in offset order per channel.
    * ``history`` sees every publication whose ``publish`` has returned, bounded by the
      channel's ``history_size`` and ``history_ttl``.
    * The epoch of a stream changes whenever the store lost the stream (restart, expiry of
      the whole stream), so positions of a lost stream are never taken for current ones.
    """

    async def start(self, handler: BrokerHandler) -> None:
        """Connect; from now on deliver to ``handler``."""

    async def close(self) -> None:
        """Disconnect and release resources."""

    async def subscribe(self, channel: str) -> None:
        """Start delivering ``channel`` to this node (idempotent; the hub refcounts)."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel`` to this node."""

    async def publish(self, channel: str, data: bytes, kind: PayloadKind, *,
                      options: ChannelOptions, event: str | None = None,
                      info: ClientInfo | None = None) -> StreamPosition:
        """Store (per ``options``), position and deliver a publication; return its position."""

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Deliver a join event to every node subscribed to ``channel`` (not stored)."""

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Deliver a leave event to every node subscribed to ``channel`` (not stored)."""

    async def publish_control(self, data: bytes) -> None:
        """Deliver a control message to every node (``on_control``)."""

    async def history(self, channel: str, *, options: ChannelOptions,
                      since: StreamPosition | None = None, limit: int | None = None
                      ) -> HistoryResult:
        """Publications after ``since`` (all retained if None, none if ``limit`` is 0)."""

    async def remove_history(self, channel: str) -> None:
        """Drop the retained publications of ``channel`` (positions continue)."""


@runtime_checkable
class ImmediatePublisher(Protocol):
    """Optional extra of brokers that can publish without suspending (in-process brokers).

    Lets a message received from a client be published and fanned out inside the same
    ``data_received`` call, with no task per message.  Same guarantees as ``Broker.publish``.
    """

    def publish_now(self, channel: str, data: bytes, kind: PayloadKind, *,
                    options: ChannelOptions, event: str | None = None,
                    info: ClientInfo | None = None) -> StreamPosition:
        """Publish synchronously."""
