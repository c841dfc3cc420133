"""The topic <-> channel mapping (pure): rules, escaping, private forms, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livehub.core.channels import Namespaces, public_options
from livehub.core.permissions import allowed_users, is_private
from livehub.errors import BadChannel, ConfigError
from livehub.protocols.mercure.topics import TopicMap, escape, unescape

MAP = TopicMap(["books=https://example.com/books/", "deep=https://example.com/books/deep/",
                "chat=chat:"])


def test_rules_longest_prefix_and_default() -> None:
    assert MAP.channel("https://example.com/books/1") == "books:1"
    assert MAP.channel("https://example.com/books/deep/2") == "deep:2"
    assert MAP.channel("chat:room1") == "chat:room1"
    assert MAP.channel("news") == "news"
    assert MAP.channel("https://other.org/x") == "https~3A//other.org/x"
    assert TopicMap([], "mercure").channel("https://other.org/x") == "mercure:https://other.org/x"


def test_meaningful_characters_are_escaped() -> None:
    assert MAP.channel("https://example.com/books/$1#x~y?q=a b") == (
        "books:~241~23x~7Ey~3Fq=a~20b")
    assert not is_private(MAP.channel("https://example.com/books/$1"))
    assert MAP.channel("https://example.com/books/é") == "books:~C3~A9"


def test_private_updates_use_the_private_channel() -> None:
    channel = MAP.channel("https://example.com/books/1", private=True)
    assert channel == "books:$1" and is_private(channel)
    assert MAP.topic(channel) == ("https://example.com/books/1", True)
    assert MAP.topic("chat:room#42") == ("chat:room#42", True)


def test_reverse_of_unmapped_namespace_is_none() -> None:
    assert MAP.topic("other:x") is None
    assert MAP.topic("news") == ("news", False)


def test_too_long_is_refused() -> None:
    with pytest.raises(BadChannel):
        MAP.channel("https://example.com/books/" + "é" * 100)


def test_bad_rules_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        TopicMap(["a=x", "a=y"])
    with pytest.raises(ConfigError):
        TopicMap(["m=x"], "m")


@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60))
def test_round_trip_any_topic(topic: str) -> None:
    assert unescape(escape(topic)) == topic
    namespaces = Namespaces(public_options(),
                            {n: public_options() for n in ("books", "deep", "chat")})
    for private in (False, True):
        try:
            channel = MAP.channel(topic, private=private)
        except BadChannel:
            continue
        namespaces.options(channel)  # a valid channel of a configured namespace
        assert MAP.topic(channel) == (topic, private or allowed_users(channel) is not None)
