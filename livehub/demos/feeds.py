"""The simulated feeds behind the SSE demos: a market of 50 symbols and a few football matches.

Each is a small pure model (``Market.tick``, ``Match.minute``) that returns what to publish,
and one task that publishes it through the Node like any backend would (``/api/publish``
does the same).  They run only in demo mode, started by the application.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from livehub.core.node import Node
from livehub.errors import LivehubError
from livehub.wire.payload import PayloadKind

log = logging.getLogger(__name__)

SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "ORCL", "ADBE",
    "CRM", "AMD", "INTC", "CSCO", "QCOM", "TXN", "IBM", "NFLX", "PYPL", "SHOP",
    "UBER", "ABNB", "SNOW", "PLTR", "NOW", "INTU", "AMAT", "MU", "LRCX", "KLAC",
    "JPM", "BAC", "WFC", "GS", "MS", "V", "MA", "AXP", "BRK", "KO",
    "PEP", "MCD", "NKE", "DIS", "WMT", "COST", "HD", "XOM", "CVX", "PFE",
)
MARKET = "market:"
SCORES = "scores:"


@dataclass(slots=True)
class Market:
    """A random walk per symbol; each tick moves about a quarter of them."""

    rng: random.Random = field(default_factory=random.Random)
    open: dict[str, float] = field(default_factory=dict)
    price: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for symbol in SYMBOLS:
            self.open[symbol] = self.price[symbol] = round(self.rng.uniform(20, 900), 2)

    def tick(self) -> list[tuple[str, dict[str, object]]]:
        """The (channel, quote) pairs of one tick."""
        moved = self.rng.sample(SYMBOLS, k=len(SYMBOLS) // 4)
        now = round(time.time() * 1000)
        quotes = []
        for symbol in moved:
            price = max(1.0, round(self.price[symbol] * (1 + self.rng.gauss(0, 0.002)), 2))
            self.price[symbol] = price
            change = round((price / self.open[symbol] - 1) * 100, 2)
            quotes.append((MARKET + symbol, {"s": symbol, "p": price, "c": change, "t": now}))
        return quotes


TEAMS = (("Lions", "Eagles"), ("Sharks", "Wolves"), ("Comets", "Rovers"), ("Tigers", "Falcons"))
PLAYERS = ("Silva", "Kane", "Müller", "Mbappé", "Pedri", "Saka", "Núñez", "Kim", "Osimhen",
           "Rice", "Davies", "Gavi")


@dataclass(slots=True)
class Match:
    """One simulated match: a minute at a time, goals and cards now and then, a new match
    after full time."""

    id: str
    home: str
    away: str
    rng: random.Random = field(default_factory=random.Random)
    clock: int = -1
    score: list[int] = field(default_factory=lambda: [0, 0])

    @property
    def channel(self) -> str:
        return SCORES + self.id

    def event(self, kind: str, **extra: object) -> dict[str, object]:
        return {"match": self.id, "home": self.home, "away": self.away, "minute": self.clock,
                "score": list(self.score), "kind": kind, **extra}

    def minute(self) -> Iterator[dict[str, object]]:
        """What happens in the next minute (kick-off, goals, cards, half and full time)."""
        self.clock += 1
        if self.clock == 0:
            self.score = [0, 0]
            yield self.event("kickoff")
            return
        if self.clock > 95:  # a pause after full time, then the next match
            self.clock = -1
            return
        if self.clock > 90:
            return
        side = self.rng.randrange(2)
        team = (self.home, self.away)[side]
        if self.rng.random() < 0.03:
            self.score[side] += 1
            yield self.event("goal", team=team, player=self.rng.choice(PLAYERS))
        elif self.rng.random() < 0.025:
            card = "red" if self.rng.random() < 0.1 else "yellow"
            yield self.event("card", team=team, player=self.rng.choice(PLAYERS), card=card)
        if self.clock == 45:
            yield self.event("halftime")
        elif self.clock == 90:
            yield self.event("fulltime")
        elif self.clock % 5 == 0:
            yield self.event("clock")


def matches(rng: random.Random | None = None) -> list[Match]:
    rng = rng or random.Random()
    found = []
    for i, (home, away) in enumerate(TEAMS):
        match = Match(f"m{i + 1}", home, away, rng)
        match.clock = rng.randrange(0, 80)  # the matches are already under way
        match.score = [rng.randrange(3), rng.randrange(3)]
        found.append(match)
    return found


async def _publish(node: Node, channel: str, value: dict[str, object]) -> None:
    try:
        await node.publish(channel, json.dumps(value).encode(), PayloadKind.JSON)
    except LivehubError as exc:
        log.warning("demo feed: publishing to %s failed: %s", channel, exc.message)


async def run_market(node: Node, interval: float) -> None:
    """Publish a market tick every ``interval`` seconds."""
    market = Market()
    while True:
        for channel, quote in market.tick():
            await _publish(node, channel, quote)
        await asyncio.sleep(interval)


async def run_matches(node: Node, minute: float) -> None:
    """Play the matches, one match minute every ``minute`` seconds."""
    games = matches()
    for match in games:  # the state at once, so a page has a scoreboard from its first second
        await _publish(node, match.channel, match.event("clock"))
    while True:
        await asyncio.sleep(minute)
        for match in games:
            for event in match.minute():
                await _publish(node, match.channel, event)
