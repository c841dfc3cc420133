"""The budgets that keep a node bounded under abuse (``[limits]`` settings, docs/limits.md).

Every budget here has a default, a setting (``[limits]`` in the TOML file, ``LIVEHUB_<NAME>``,
``--<name>``), a documented answer for the client that exceeds it and a metric name; the table
in ``docs/limits.md`` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from livehub.errors import ConfigError
from livehub.wire.validation import MAX_DEPTH, PublicationRules


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_publication_size: int = 1024 * 1024
    """Bytes of one publication's payload, from any protocol (after inflation)."""
    max_json_depth: int = MAX_DEPTH
    """Nesting of any JSON a peer sends: publication data, API bodies, client commands."""
    history_memory: int = 256 * 1024 * 1024
    """Bytes of history over all channels of the memory broker; past it the oldest
    publications of any channel are evicted first (Redis: bound by Redis ``maxmemory``)."""

    api_max_broadcast: int = 1000
    """Channels of one server API ``broadcast``."""
    api_max_batch: int = 1000
    """Commands of one server API ``batch``."""

    def __post_init__(self) -> None:
        if self.max_publication_size < 1:
            raise ConfigError("max_publication_size must be >= 1, not "
                              f"{self.max_publication_size}")
        if self.api_max_broadcast < 1 or self.api_max_batch < 1:
            raise ConfigError("api_max_broadcast and api_max_batch must be >= 1")
        if self.history_memory < 0:
            raise ConfigError(f"history_memory must be >= 0, not {self.history_memory}")
        if not 1 <= self.max_json_depth <= 500:
            raise ConfigError(f"max_json_depth must be in 1..500, not {self.max_json_depth}")

    @property
    def publication_rules(self) -> PublicationRules:
        return PublicationRules(max_size=self.max_publication_size,
                                max_depth=self.max_json_depth)
