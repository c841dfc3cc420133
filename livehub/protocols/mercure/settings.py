"""Settings of the Mercure hub (``[mercure]`` in the TOML file; ``LIVEHUB_<NAME>``, ``--<name>``).

The topic <-> channel mapping they configure is explained in ``docs/mercure.md``; the
authorization settings (token keys, anonymous subscribers) share the ``[mercure]`` table but
belong to ``livehub.protocols.mercure.tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from livehub.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class MercureSettings:
    mercure: bool = False
    """Serve the Mercure hub at ``/.well-known/mercure``.  Unset in the configuration,
    ``livehub serve`` turns it on when the hub's namespaces are configured (they are without
    ``[namespaces]`` tables) and off otherwise; an embedding application asks for it."""
    mercure_journal: str = "mercure:$journal"
    """The journal channel Mercure subscribers follow: every update of the mapped namespaces
    is appended there, so one position resumes every selector (its namespace's history
    options bound how far back a subscriber can resume)."""
    mercure_namespace: str = "mercure"
    """The namespace of topics no ``mercure_topics`` rule maps ('': channels without a
    namespace)."""
    mercure_topics: Sequence[str] = ()
    """Topic prefixes mapped to namespaces, each ``namespace=prefix``:
    ``books=https://example.com/books/`` maps ``https://example.com/books/1`` to ``books:1``."""
    mercure_max_selectors: int = 64
    """Topic selectors one subscription may hold (400 beyond)."""
    mercure_max_topics: int = 64
    """Topics one update may have (400 beyond)."""
    mercure_discovery: bool = True
    """Add ``Link: </.well-known/mercure>; rel="mercure"`` to the pages livehub serves."""
    mercure_hub_url: str = "/.well-known/mercure"
    """The hub URL the discovery header announces (absolute when behind a proxy)."""
    mercure_subscriptions: bool = False
    """The active subscriptions API and subscription events."""

    def namespaces(self) -> frozenset[str]:
        """The namespaces the hub needs configured (its topics' and its journal's)."""
        names = {rule.partition("=")[0].strip() for rule in self.mercure_topics}
        names.add(self.mercure_namespace)
        ns, sep, _ = self.mercure_journal.partition(":")
        if sep:
            names.add(ns)
        names.discard("")
        return frozenset(names)

    def __post_init__(self) -> None:
        if self.mercure_max_selectors < 1 or self.mercure_max_topics < 1:
            raise ConfigError("mercure_max_selectors and mercure_max_topics must be >= 1")
        for rule in self.mercure_topics:
            ns, sep, prefix = rule.partition("=")
            if not sep or not ns or not prefix:
                raise ConfigError(f"mercure_topics: {rule!r} is not namespace=prefix")
