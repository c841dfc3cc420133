"""Mercure updates (pure): the publish form, the journal entry of an update, its SSE event.

The publish form (Mercure "Publication"): ``application/x-www-form-urlencoded`` fields
``topic`` (repeated, at least one), ``data``, ``private`` (present: private, whatever its
value), ``id`` (not starting with ``#``: those are the hub's own ids), ``type`` and ``retry``
(ASCII digits).  Any other field, a repeated single field, bytes that are not UTF-8 or values
with control characters are refused with 400.

Ids.  An update keeps the publisher's ``id`` or gets ``urn:uuid:<uuid4>``; a publication that
did not come through Mercure (the server API, a WebSocket client) has none, and its event id is
its journal position, ``#<offset>~<epoch>`` (the form the spec leaves to hubs: a fragment).  A
subscriber resumes from either (``livehub.protocols.mercure.resume``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from livehub.core.journal import Entry
from livehub.errors import BadRequest
from livehub.wire import sse
from livehub.wire.cursor import EPOCH_RE, StreamPosition
from livehub.wire.payload import PayloadKind, as_text

FIELDS = frozenset({"topic", "data", "private", "id", "type", "retry"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_POSITION_ID = re.compile(r"#(0|[1-9][0-9]{0,18})~([A-Za-z0-9]{1,32})")


@dataclass(frozen=True, slots=True)
class Update:
    """One update: what a publisher posted, or what a journal entry says."""

    topics: tuple[str, ...]
    data: bytes = b""
    private: bool = False
    update_id: str | None = None
    type: str | None = None
    retry: int | None = None

    def meta(self) -> dict[str, object]:
        """The ``meta`` of this update's journal entry."""
        meta: dict[str, object] = {"topics": list(self.topics)}
        if self.private:
            meta["private"] = True
        if self.retry is not None:
            meta["retry"] = self.retry
        return meta


def _field(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("form fields must be UTF-8") from None


def parse_form(body: bytes, content_type: str | None, *, max_topics: int) -> Update:
    """The update of a publish request; ``BadRequest`` (400) for what the spec refuses."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadRequest("publish with Content-Type: application/x-www-form-urlencoded")
    fields: dict[str, list[str]] = {}
    for part in body.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = _field(name)
        if key not in FIELDS:
            raise BadRequest(f"unknown field {key[:40]!r} (fields: "
                             f"{', '.join(sorted(FIELDS))})")
        fields.setdefault(key, []).append(_field(value))
    for key, values in fields.items():
        if key != "topic" and len(values) > 1:
            raise BadRequest(f"field {key!r} must appear at most once")
    topics = tuple(dict.fromkeys(fields.get("topic", ())))
    if not topics:
        raise BadRequest("missing topic: an update needs at least one topic field")
    if len(topics) > max_topics:
        raise BadRequest(f"at most {max_topics} topics per update")
    for topic in topics:
        check_text(topic, "topic")
    update_id = _one(fields, "id")
    if update_id is not None and (not update_id or update_id.startswith("#")
                                  or not sse.valid_field(update_id)):
        raise BadRequest("id must be non-empty, must not start with '#' and must not "
                             "contain CR, LF or NUL")
    kind = _one(fields, "type")
    if kind is not None and not sse.valid_field(kind):
        raise BadRequest("type must not contain CR, LF or NUL")
    retry_text = _one(fields, "retry")
    retry = None
    if retry_text is not None:
        if not retry_text.isascii() or not retry_text.isdigit() or len(retry_text) > 12:
            raise BadRequest("retry must be ASCII digits")
        retry = int(retry_text)
    data = _one(fields, "data") or ""
    return Update(topics, data.encode(), "private" in fields,
                  update_id or f"urn:uuid:{uuid.uuid4()}", kind or None, retry)


def _one(fields: dict[str, list[str]], key: str) -> str | None:
    values = fields.get(key)
    return values[0] if values else None


def check_text(value: str, what: str) -> None:
    """Topics and selectors: no C0/C1 control characters or DEL (400)."""
    if not value or _CONTROL.search(value):
        raise BadRequest(f"{what} must be non-empty, without control characters")


def from_entry(entry: Entry, topic_of: Sequence[str] | None, private: bool) -> Update:
    """The update a journal entry stands for: ``meta`` of an entry Mercure appended, else one
    topic (``topic_of``, from the channel) and the publication's event as its type."""
    meta = entry.meta
    topics = meta.get("topics")
    if isinstance(topics, list) and topics and all(isinstance(t, str) for t in topics):
        retry = meta.get("retry")
        return Update(tuple(topics), entry.data, meta.get("private") is True, entry.entry_id,
                      entry.event, retry if isinstance(retry, int) else None)
    return Update(tuple(topic_of or ()), as_text(entry.data, entry.kind), private, None,
                  entry.event)


def position_id(position: StreamPosition) -> str:
    """The hub's event id of a journal position."""
    return f"#{position.offset}~{position.epoch}"


def parse_position_id(text: str) -> StreamPosition | None:
    m = _POSITION_ID.fullmatch(text)
    if m is None or not EPOCH_RE.fullmatch(m.group(2)):
        return None
    return StreamPosition(m.group(2), int(m.group(1)))


def event_bytes(update: Update, event_id: str) -> bytes:
    """The SSE event of an update (``id``, ``event``, ``retry``, ``data``)."""
    head = b"id: " + event_id.encode() + b"\n"
    if update.type is not None:
        head += b"event: " + update.type.encode() + b"\n"
    if update.retry is not None:
        head += b"retry: %d\n" % update.retry
    return head + sse.data_lines(update.data) + b"\n"


KIND = PayloadKind.TEXT
"""Mercure data is text: the kind of the channel publications of an update."""
