"""The channel permission model without any I/O: one table per rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from livehub.core.channels import ChannelOptions, public_options
from livehub.core.permissions import (
    ANONYMOUS,
    Principal,
    allowed_users,
    check_granted,
    check_history,
    check_presence,
    check_publish,
    check_subscribe,
    is_private,
    may_receive,
)
from livehub.errors import PermissionDenied

U42 = Principal("42")
PUBLIC = public_options()
USERS = ChannelOptions(allow_user_limited_channels=True)
CLOSED = ChannelOptions()
MEMBERS = ChannelOptions(allow_subscribe_for_client=True)
OPEN_USERS = public_options(allow_user_limited_channels=True)


def allowed(who: Principal, channel: str, options: ChannelOptions,
            token_channel: str | None = None) -> bool:
    try:
        check_subscribe(who, channel, options, token_channel=token_channel)
    except PermissionDenied:
        return False
    return True


@pytest.mark.parametrize(("channel", "private", "users"), [
    ("news", False, None),
    ("$news", True, None),
    ("ns:$news", True, None),
    ("ns:news$", False, None),
    ("user:notes#42", False, ("42",)),
    ("user:notes#42,43", False, ("42", "43")),
    ("user:#42", False, ("42",)),
    ("user:notes#", False, ()),
    ("notes#a#42", False, ("42",)),
])
def test_channel_kinds(channel: str, private: bool, users: tuple[str, ...] | None) -> None:
    assert is_private(channel) is private
    assert allowed_users(channel) == users


@pytest.mark.parametrize(("who", "channel", "options", "expected"), [
    (ANONYMOUS, "news", PUBLIC, True),
    (U42, "news", PUBLIC, True),
    (ANONYMOUS, "ns:x", CLOSED, False),               # Centrifugo's secure default
    (U42, "ns:x", CLOSED, False),
    (ANONYMOUS, "ns:x", MEMBERS, False),              # users only
    (U42, "ns:x", MEMBERS, True),
    (ANONYMOUS, "$x", PUBLIC, False),                 # private: token or claim needed
    (U42, "$x", PUBLIC, False),
    (U42, "ns:$x", OPEN_USERS, False),
    (Principal("42", frozenset({"$x"})), "$x", PUBLIC, True),
    (U42, "user:notes#42", USERS, True),
    (U42, "user:notes#7,42", USERS, True),
    (U42, "user:notes#43", USERS, False),             # the listed users only
    (U42, "user:notes#43,44", USERS, False),
    (U42, "user:#43", USERS, False),
    (ANONYMOUS, "user:notes#42", USERS, False),
    (U42, "user:notes#42", CLOSED, False),            # no user-limited channels there
    (U42, "notes#43", PUBLIC, False),                 # '#' is never public
    (U42, "chat:room#43", OPEN_USERS, False),
    (ANONYMOUS, "chat:room#42", OPEN_USERS, False),
    (Principal("", insecure=True), "$x", CLOSED, True),
])
def test_subscribe(who: Principal, channel: str, options: ChannelOptions,
                   expected: bool) -> None:
    assert allowed(who, channel, options) is expected


def test_subscription_token_allows_its_channel_only() -> None:
    assert allowed(U42, "$x", CLOSED, token_channel="$x")
    assert allowed(U42, "user:notes#43", USERS, token_channel="user:notes#43")
    with pytest.raises(PermissionDenied, match="for channel '\\$y'"):
        check_subscribe(U42, "$x", CLOSED, token_channel="$y")


Check = Callable[..., None]


@pytest.mark.parametrize(("check", "for_client", "for_subscriber"), [
    (check_publish, ChannelOptions(client_publish=True),
     ChannelOptions(allow_publish_for_subscriber=True)),
    (check_presence, ChannelOptions(allow_presence_for_client=True),
     ChannelOptions(allow_presence_for_subscriber=True)),
    (check_history, ChannelOptions(allow_history_for_client=True),
     ChannelOptions(allow_history_for_subscriber=True)),
], ids=["publish", "presence", "history"])
def test_operations_for_client_and_subscriber(check: Check, for_client: ChannelOptions,
                                              for_subscriber: ChannelOptions) -> None:
    check(ANONYMOUS, "ns:x", for_client, subscribed=False)
    check(U42, "ns:x", for_subscriber, subscribed=True)
    check(Principal(insecure=True), "$x", CLOSED, subscribed=False)
    for who, channel, options, subscribed in [
            (U42, "ns:x", for_subscriber, False),   # subscribers only
            (U42, "ns:x", CLOSED, True),             # not allowed at all
            (U42, "$x", for_client, False),          # a private channel it may not see
            (U42, "ns:n#43", for_client, False)]:    # another user's channel
        with pytest.raises(PermissionDenied):
            check(who, channel, options, subscribed=subscribed)


# -- pattern grants (a matcher over names besides the set of channels; Mercure, issue 11) -----


class PrefixGrant:
    """A ``NameGrant``: every name under one of some prefixes."""

    def __init__(self, *prefixes: str) -> None:
        self.prefixes = prefixes

    def matches(self, name: str) -> bool:
        return name.startswith(self.prefixes)

    def matches_any(self, names: Sequence[str]) -> bool:
        return any(self.matches(n) for n in names)


def test_a_pattern_grant_counts_like_a_granted_channel() -> None:
    who = Principal.of("42", ["$exact"], grant=PrefixGrant("$books/"))
    assert who.holds("$exact") and who.holds("$books/1") and not who.holds("$users/1")
    assert allowed(who, "$books/1", CLOSED)
    assert allowed(who, "$exact", CLOSED)
    assert not allowed(who, "$users/1", CLOSED)
    assert not allowed(Principal("42"), "$books/1", CLOSED)


def test_a_private_message_reaches_principals_granted_one_of_its_names() -> None:
    reader = Principal.of("42", grant=PrefixGrant("https://example.com/users/42/"))
    listed = Principal.of("7", ["https://example.com/books/1"])
    names = ["https://example.com/books/1", "https://example.com/users/42/books/1"]
    assert may_receive(reader, names) and may_receive(listed, names)
    assert not may_receive(reader, ["https://example.com/books/1"])
    assert not may_receive(ANONYMOUS, names)
    assert not may_receive(reader, [])
    assert may_receive(Principal(insecure=True), names)


def test_check_granted_needs_every_name() -> None:
    publisher = Principal.of("app", ["urn:news"], grant=PrefixGrant("https://example.com/"))
    check_granted(publisher, ["urn:news", "https://example.com/books/1"], "publishing to")
    with pytest.raises(PermissionDenied, match="'urn:other' is not granted"):
        check_granted(publisher, ["urn:news", "urn:other"], "publishing to")
    check_granted(Principal(insecure=True), ["anything"], "publishing to")
    check_granted(ANONYMOUS, [], "publishing to")
