"""Broker and presence implementations under test: every one must pass the same contract suite.

The ``redis`` params run against a real ``redis-server`` started once per session (see
``tests/redis_server.py``); each test gets its own key prefix, so tests do not see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from livehub.core.broker import Broker
from livehub.core.memory import MemoryBroker
from livehub.core.presence import MemoryPresence, PresenceManager

from ..redis_server import RedisServer

BrokerFactory = Callable[[], Awaitable[Broker]]
PresenceFactory = Callable[[], Awaitable[PresenceManager]]
KINDS = ["memory", pytest.param("redis", marks=pytest.mark.redis),
         pytest.param("redis-shards", marks=pytest.mark.redis)]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server_2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A second Redis, for sharding."""
    server = RedisServer(tmp_path_factory.mktemp("redis2"))
    server.start()
    yield server
    server.stop()


def redis_urls(request: pytest.FixtureRequest, kind: str) -> list[str]:
    servers = ["redis_server"] + (["redis_server_2"] if kind == "redis-shards" else [])
    return [request.getfixturevalue(name).url for name in servers]


def redis_broker(urls: list[str], prefix: str) -> Broker:
    from livehub.core.redis.client import RedisBroker, RedisOptions, connect
    from livehub.core.redis.shards import ShardedRedisBroker

    shards = [RedisBroker(connect(RedisOptions(url=url)), prefix=prefix, ping_interval=1.0)
              for url in urls]
    return shards[0] if len(shards) == 1 else ShardedRedisBroker(shards, urls)


@pytest.fixture(params=KINDS)
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Makes brokers of one implementation that share one store (several 'nodes').

    Memory: the same broker every time (one process has one node).  Redis: a new broker (a
    new node) on the same Redis and prefix every time; ``redis-shards``: over two Redis.
    """
    made: list[Broker] = []
    kind = request.param
    prefix = f"t{uuid.uuid4().hex[:10]}"

    async def make() -> Broker:
        if kind == "memory":
            broker: Broker = MemoryBroker() if not made else made[0]
        else:
            broker = redis_broker(redis_urls(request, kind), prefix)
        made.append(broker)
        return broker

    yield make
    for broker in {id(b): b for b in made}.values():
        await broker.close()


@pytest.fixture(params=KINDS)
async def presence_factory(request: pytest.FixtureRequest) -> AsyncIterator[PresenceFactory]:
    """Makes presence managers of one implementation sharing one store."""
    clients: list[object] = []
    shared = MemoryPresence()
    prefix = f"t{uuid.uuid4().hex[:10]}"

    async def make() -> PresenceManager:
        if request.param == "memory":
            return shared
        from livehub.core.redis.client import RedisOptions, RedisPresence, connect
        from livehub.core.redis.shards import ShardedRedisPresence

        urls = redis_urls(request, request.param)
        shards = []
        for url in urls:
            client = connect(RedisOptions(url=url))
            clients.append(client)
            shards.append(RedisPresence(client, prefix=prefix))
        return shards[0] if len(shards) == 1 else ShardedRedisPresence(shards, urls)

    yield make
    for client in clients:
        await client.aclose()  # type: ignore[attr-defined]
