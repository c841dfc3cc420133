"""The channel permission model, one for every protocol: who may subscribe, publish and read
presence and history (pure: no I/O, no clock; tokens arrive verified).

Theory of operation
-------------------
Every protocol turns its credentials into a ``Principal`` (the user of a verified connection
token, ``""`` when anonymous, and the channels that token grants through its ``channels`` and
``subs`` claims) and asks this module before it subscribes a client or runs a client's publish,
presence or history request.  The answer is ``None`` (allowed) or a ``PermissionDenied`` raised
with a message; each protocol says it its own way (403, close code 3507, error 103).  The rules
follow Centrifugo's "Channel permission model", in this order:

1. development mode (``client_insecure``): everything is allowed;
2. a subscription token for this very channel and user, or a channel granted by the connection
   token, allows subscribing whatever the namespace says;
3. a channel whose name starts with ``$`` (private) needs 2.;
4. a user-limited channel (``#`` in its name, ``ns:name#42,43``) is open, without a token, only
   to the users it lists and only when the namespace has ``allow_user_limited_channels``; every
   other client (unlisted users, anonymous ones) needs 2.  Unlike Centrifugo, ``#`` is never an
   ordinary character: a ``#`` channel is never public;
5. otherwise the namespace decides: ``allow_subscribe_for_client`` for any client, and
   ``anonymous_subscribe`` too for a client without a user.

Publish, presence and history: the ``*_for_client`` option allows any client that could see the
channel (not a ``$`` or ``#`` channel it has no right to), the ``*_for_subscriber`` option the
clients subscribed to it.  ``client_publish`` is the ``for_client`` option of publishing.
The checks run once per subscribe or request, never per delivery.

Pattern grants
--------------
Besides its set of channels, a principal may carry a ``NameGrant``: a matcher over names
(``matches(name)``, ``matches_any(names)``), such as the topic selectors of a Mercure token
(``livehub.protocols.mercure.selectors.SelectorSet``).  A name the grant matches counts
exactly like a name in ``channels``, in every rule above (``Principal.holds``).  Two rules
speak of several names at once, for protocols whose messages carry several names (a Mercure
update and its alternate topics):

- ``may_receive(who, names)``: a private message reaches only principals granted at least one
  of its names (Mercure: "a private update is dispatched to subscribers whose token allows one
  of its topics").  This one runs per delivery of a private message; a grant that caches its
  answers (``SelectorSet`` does) keeps it cheap;
- ``check_granted(who, names, what)``: raise ``PermissionDenied`` unless every name is granted
  (Mercure: a publisher's token must cover every topic of the update).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from livehub.core.channels import NAMESPACE_SEPARATOR, ChannelOptions
from livehub.errors import PermissionDenied

PRIVATE_PREFIX = "$"
USER_SEPARATOR = "#"


class NameGrant(Protocol):
    """A grant over names given by a pattern rather than a list (pure; may cache)."""

    def matches(self, name: str) -> bool: ...

    def matches_any(self, names: Sequence[str]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user (``""``: anonymous) and what its credentials grant."""

    user: str = ""
    channels: frozenset[str] = frozenset()
    """Channels granted by the connection token (``channels`` claim and keys of ``subs``)."""
    insecure: bool = False
    """Development mode: every permission is granted."""
    grant: NameGrant | None = None
    """Names granted by pattern (Mercure topic selectors), besides ``channels``."""

    @classmethod
    def of(cls, user: str, channels: Iterable[str] = (), *, insecure: bool = False,
           grant: NameGrant | None = None) -> Principal:
        return cls(user, frozenset(channels), insecure, grant)

    def holds(self, name: str) -> bool:
        """Whether ``name`` is granted by ``channels`` or by the pattern grant (development
        mode aside)."""
        return name in self.channels or (self.grant is not None and self.grant.matches(name))


ANONYMOUS = Principal()


def _name(channel: str) -> str:
    """The part of a channel name after its namespace."""
    _, sep, rest = channel.partition(NAMESPACE_SEPARATOR)
    return rest if sep else channel


def is_private(channel: str) -> bool:
    """``$name`` or ``ns:$name``: subscribing needs a token."""
    return channel.startswith(PRIVATE_PREFIX) or _name(channel).startswith(PRIVATE_PREFIX)


def allowed_users(channel: str) -> tuple[str, ...] | None:
    """The users of a user-limited channel (``ns:name#42,43`` -> ``("42", "43")``), or None
    when the channel is not user-limited."""
    name = _name(channel)
    if USER_SEPARATOR not in name:
        return None
    return tuple(u for u in name.rpartition(USER_SEPARATOR)[2].split(",") if u)


def _restricted(who: Principal, channel: str, options: ChannelOptions) -> str | None:
    """Why ``who`` has no right to a ``$`` or ``#`` channel without a token (None: it has)."""
    if who.insecure or who.holds(channel):
        return None
    if is_private(channel):
        return f"channel {channel!r} is private: it needs a subscription token"
    users = allowed_users(channel)
    if users is None:
        return None
    if options.allow_user_limited_channels and who.user and who.user in users:
        return None
    if not options.allow_user_limited_channels:
        return f"channel {channel!r} is user-limited: it needs a subscription token"
    return f"channel {channel!r} is limited to users {', '.join(users) or '(none)'}"


def check_subscribe(who: Principal, channel: str, options: ChannelOptions, *,
                    token_channel: str | None = None) -> None:
    """Raise ``PermissionDenied`` unless ``who`` may subscribe to ``channel``.

    ``token_channel``: the channel of a subscription token the client presented, already
    verified (signature, expiry) and issued to ``who.user``.
    """
    if who.insecure or who.holds(channel):
        return
    if token_channel is not None:
        if token_channel != channel:
            raise PermissionDenied(f"the subscription token is for channel {token_channel!r}, "
                                   f"not {channel!r}")
        return
    reason = _restricted(who, channel, options)
    if reason is not None:
        raise PermissionDenied(reason)
    if allowed_users(channel) is not None:
        return  # a listed user of a user-limited channel
    if not options.allow_subscribe_for_client:
        raise PermissionDenied(f"subscribing to {channel!r} needs a subscription token")
    if not who.user and not options.anonymous_subscribe:
        raise PermissionDenied(f"anonymous clients may not subscribe to {channel!r}")


def _check(who: Principal, channel: str, options: ChannelOptions, what: str, *,
           for_client: bool, for_subscriber: bool, subscribed: bool) -> None:
    if who.insecure or (subscribed and (for_subscriber or for_client)):
        return
    if for_client:
        reason = _restricted(who, channel, options)
        if reason is None:
            return
        raise PermissionDenied(f"{what} in {channel!r} is not allowed: {reason}")
    if for_subscriber:
        raise PermissionDenied(f"{what} in {channel!r} is allowed to its subscribers only")
    raise PermissionDenied(f"{what} in {channel!r} is not allowed")


def check_publish(who: Principal, channel: str, options: ChannelOptions, *,
                  subscribed: bool) -> None:
    """Raise ``PermissionDenied`` unless ``who`` may publish to ``channel``
    (``client_publish``, or ``allow_publish_for_subscriber`` and ``subscribed``)."""
    _check(who, channel, options, "publishing", for_client=options.client_publish,
           for_subscriber=options.allow_publish_for_subscriber, subscribed=subscribed)


def check_presence(who: Principal, channel: str, options: ChannelOptions, *,
                   subscribed: bool) -> None:
    """Raise ``PermissionDenied`` unless ``who`` may read the presence of ``channel``."""
    _check(who, channel, options, "presence", for_client=options.allow_presence_for_client,
           for_subscriber=options.allow_presence_for_subscriber, subscribed=subscribed)


def check_history(who: Principal, channel: str, options: ChannelOptions, *,
                  subscribed: bool) -> None:
    """Raise ``PermissionDenied`` unless ``who`` may read the history of ``channel``."""
    _check(who, channel, options, "history", for_client=options.allow_history_for_client,
           for_subscriber=options.allow_history_for_subscriber, subscribed=subscribed)


def may_read_history(who: Principal, channel: str, options: ChannelOptions) -> bool:
    """Whether a subscriber may ask for recoverable or positioned subscriptions."""
    return who.insecure or options.allow_history_for_client or (
        options.allow_history_for_subscriber)


def may_read_presence(who: Principal, channel: str, options: ChannelOptions) -> bool:
    """Whether a subscriber may ask for join/leave pushes."""
    return who.insecure or options.allow_presence_for_client or (
        options.allow_presence_for_subscriber)


def may_receive(who: Principal, names: Sequence[str]) -> bool:
    """Whether a private message about ``names`` may reach ``who``: one of them is granted."""
    if who.insecure or any(n in who.channels for n in names):
        return True
    return who.grant is not None and who.grant.matches_any(names)


def check_granted(who: Principal, names: Sequence[str], what: str) -> None:
    """Raise ``PermissionDenied`` unless every one of ``names`` is granted to ``who``
    (``what``: the action, for the message)."""
    if who.insecure:
        return
    for name in names:
        if not who.holds(name):
            raise PermissionDenied(f"{what} {name!r} is not granted")
