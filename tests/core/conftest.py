"""Broker implementations under test: every one must pass the same contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from livehub.core.broker import Broker
from livehub.core.memory import MemoryBroker

BrokerFactory = Callable[[], Awaitable[Broker]]


@pytest.fixture(params=["memory"])
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Makes brokers of one implementation that share one store (several 'nodes')."""
    made: list[Broker] = []
    kind = request.param

    async def make() -> Broker:
        if kind == "memory":
            broker: Broker = MemoryBroker() if not made else made[0]
        else:  # pragma: no cover - further implementations register here
            raise AssertionError(kind)
        made.append(broker)
        return broker

    yield make
    for broker in {id(b): b for b in made}.values():
        await broker.close()
