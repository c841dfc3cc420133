"""The mapping between Mercure topics (IRIs) and livehub channels, both ways (pure).

Theory of operation
-------------------
A rule ``namespace=prefix`` maps every topic that starts with ``prefix`` into ``namespace``:
the rest of the topic becomes the channel's name (``books=https://example.com/books/`` maps
``https://example.com/books/1`` to ``books:1``).  The longest matching prefix wins.  A topic
no rule maps goes to the default namespace (``mercure_namespace``; ``""``: channels without a
namespace, so ``news`` is the channel ``news``).  So namespaces stay the configured ones, with
their options and permissions, and a rule ``chat=chat:`` makes the channels of ``chat`` Mercure
topics under their own names.

The name is escaped so that it is a valid channel name that means nothing it should not: every
character outside ``[A-Za-z0-9_-.:@/=+,!*|]`` is written ``~XX`` per UTF-8 byte, which includes
``~`` itself, ``$`` (private channels) and ``#`` (user-limited channels); ``:`` is escaped too
in a channel without a namespace.  A **private** update goes to the private form of the
channel, ``$`` before the name (``books:$1``): the permission model keeps it from the plain and
Centrifugo subscribers that have no grant for it, as any ``$`` channel.

The reverse (a channel back to its topic, for publications that did not come through Mercure)
undoes the escape and the rule; a ``$`` or ``#`` channel gives a private update.  A channel of
a namespace that is not mapped has no topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from livehub.core.channels import NAMESPACE_SEPARATOR, check_channel
from livehub.core.permissions import PRIVATE_PREFIX, allowed_users, is_private
from livehub.errors import BadChannel, ConfigError

_KEEP = re.compile(r"[A-Za-z0-9_\-.:@/=+,!*|]")
_KEEP_NO_COLON = re.compile(r"[A-Za-z0-9_\-.@/=+,!*|]")
_ESCAPED = re.compile(r"(?:~[0-9A-F]{2})+")


def escape(text: str, *, colon: bool = True) -> str:
    keep = _KEEP if colon else _KEEP_NO_COLON
    out: list[str] = []
    for ch in text:
        if keep.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"~{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def unescape(name: str) -> str:
    def decode(m: re.Match[str]) -> str:
        raw = bytes(int(m.group(0)[i + 1:i + 3], 16) for i in range(0, len(m.group(0)), 3))
        return raw.decode("utf-8", "replace")

    return _ESCAPED.sub(decode, name)


class TopicMap:
    """Topics to channels and back, by the rules of the settings (see the module docstring)."""

    __slots__ = ("_by_namespace", "_rules", "default")

    def __init__(self, rules: Sequence[str], default: str = "") -> None:
        pairs: list[tuple[str, str]] = []
        by_namespace: dict[str, str] = {}
        for rule in rules:
            ns, _, prefix = rule.partition("=")
            ns = ns.strip()
            if ns in by_namespace:
                raise ConfigError(f"mercure_topics: namespace {ns!r} has two prefixes")
            if ns == default:
                raise ConfigError(f"mercure_topics: {ns!r} is the default namespace "
                                  "(mercure_namespace) too")
            by_namespace[ns] = prefix
            pairs.append((prefix, ns))
        self._rules = tuple(sorted(pairs, key=lambda p: -len(p[0])))
        self._by_namespace = by_namespace
        self.default = default

    @property
    def namespaces(self) -> frozenset[str]:
        """Every namespace a topic can map to."""
        return frozenset((*self._by_namespace, self.default))

    def channel(self, topic: str, *, private: bool = False) -> str:
        """The channel of ``topic`` (its private form when ``private``); ``BadChannel`` when
        it would not be a valid channel name (too long)."""
        ns, name = self._split(topic)
        if private:
            name = PRIVATE_PREFIX + name
        channel = f"{ns}{NAMESPACE_SEPARATOR}{name}" if ns else name
        try:
            check_channel(channel)
        except BadChannel:
            raise BadChannel(f"topic {topic[:80]!r} maps to no valid channel name (at most "
                             "255 characters once escaped)") from None
        return channel

    def _split(self, topic: str) -> tuple[str, str]:
        """The namespace of ``topic`` and its escaped name there."""
        for prefix, ns in self._rules:
            if topic.startswith(prefix):
                return ns, escape(topic[len(prefix):])
        return self.default, escape(topic, colon=bool(self.default))

    def topic(self, channel: str) -> tuple[str, bool] | None:
        """The topic of ``channel`` and whether its updates are private; None when its
        namespace is not mapped."""
        ns, sep, name = channel.partition(NAMESPACE_SEPARATOR)
        if not sep:
            ns, name = "", channel
        private = is_private(channel) or allowed_users(channel) is not None
        if name.startswith(PRIVATE_PREFIX):
            name = name[1:]
        if ns == self.default:
            return unescape(name), private
        prefix = self._by_namespace.get(ns)
        if prefix is None:
            return None
        return prefix + unescape(name), private
