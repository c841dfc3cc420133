"""permessage-deflate (RFC 7692): offer negotiation, per-connection inflate, shared deflate.

Design: the server always answers with ``server_no_context_takeover`` (RFC 7692 §7.1.1.1
lets it do so unasked), so every server-to-client message is a self-contained DEFLATE
stream.  A broadcast is then compressed ONCE per ``DeflateParams.variant_key`` (the server
window size) and the same frame bytes go to every subscriber; no connection holds a
compressor of its own.  Compression uses one cached ``zlib`` compressor per window size and
``Z_FULL_FLUSH``, whose output never refers to earlier input (RFC 1951 §3.2; RFC 7692
§7.2.1): the bytes for a message do not depend on what was compressed before.

Client-to-server messages keep their LZ77 context across messages unless
``client_no_context_takeover`` was negotiated (§7.1.1.2), so each connection owns one
``Deflater`` holding a decompressor.  A corrupt DEFLATE stream fails the connection with 1007
(invalid frame payload data, RFC 6455 §7.4.1): the frame itself was well formed, its
payload is not consistent with the RSV1 "compressed" flag.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from livehub.codes import CloseCode
from livehub.errors import PayloadTooLarge, WebSocketError
from livehub.wire.websocket import Opcode, encode_frame

__all__ = [
    "COMPRESS_THRESHOLD",
    "EXTENSION_NAME",
    "DeflateParams",
    "Deflater",
    "compress_shared",
    "encode_message",
    "negotiate",
    "worth_compressing",
]

EXTENSION_NAME: Final = "permessage-deflate"
#: Messages shorter than this are sent uncompressed by ``encode_message``: below it DEFLATE
#: rarely saves bytes and always costs CPU (RFC 7692 §6: compression is per message, optional).
COMPRESS_THRESHOLD: Final = 64
COMPRESS_LEVEL: Final = 6
COMPRESS_MEM_LEVEL: Final = 8

#: From this size a payload is sampled before it is compressed (``worth_compressing``).
SAMPLE_FROM: Final = 32 * 1024
_SAMPLE: Final = 4096

_TAIL: Final = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.1 / §7.2.2
_MIN_ZLIB_BITS: Final = 9  # zlib refuses raw deflate with an 8-bit window (256 bytes)
_BITS_RE: Final = re.compile(r"(?:[89]|1[0-5])\Z")  # §7.1.2.1: 8-15, no leading zero
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 §3.2.6 token
_QUOTED_RE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated permessage-deflate parameters of one connection (RFC 7692 §7.1).

    ``server_max_window_bits`` is the window the server compresses with (9-15);
    ``client_max_window_bits`` the largest window the client may use (8-15, sizes the
    decompressor); ``server_no_context_takeover`` is always in force (see module docstring).
    """

    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    client_no_context_takeover: bool = False

    @property
    def variant_key(self) -> int:
        """Connections with equal keys can share the bytes of one compressed broadcast."""
        return self.server_max_window_bits


Offer = list[tuple[str, str | None]]


def _split(value: str, sep: str) -> list[str] | None:
    """Split on ``sep`` outside quoted strings; None when a quote is left open."""
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append(value[start:i])
            start = i + 1
    if quoted:
        return None
    parts.append(value[start:])
    return parts


def _parse_param(text: str) -> tuple[str, str | None] | None:
    """``token [ "=" ( token / quoted-string ) ]`` (RFC 6455 §9.1); None if malformed."""
    name, eq, raw = text.partition("=")
    name = name.strip()
    if not _TOKEN_RE.fullmatch(name):
        return None
    if not eq:
        return name.lower(), None
    raw = raw.strip()
    if _TOKEN_RE.fullmatch(raw):
        return name.lower(), raw
    quoted = _QUOTED_RE.fullmatch(raw)
    if quoted is None:
        return None
    value = re.sub(r"\\(.)", r"\1", quoted.group(1))
    # §9.1: a quoted value must still be a token once unquoted.
    return (name.lower(), value) if _TOKEN_RE.fullmatch(value) else None


def parse_offers(header: str) -> list[tuple[str, Offer] | None]:
    """Parse ``Sec-WebSocket-Extensions`` (RFC 6455 §9.1) into (name, params) per offer.

    A syntactically broken offer becomes ``None`` so the caller can skip just that one.
    """
    offers: list[tuple[str, Offer] | None] = []
    items = _split(header, ",")
    if items is None:
        return [None]
    for item in items:
        if not item.strip():
            continue  # RFC 7230 §7: empty list elements are ignored
        pieces = _split(item, ";")
        name = pieces[0].strip() if pieces else ""
        if pieces is None or not _TOKEN_RE.fullmatch(name):
            offers.append(None)
            continue
        params: Offer = []
        for piece in pieces[1:]:
            param = _parse_param(piece)
            if param is None:
                break
            params.append(param)
        else:
            offers.append((name.lower(), params))
            continue
        offers.append(None)
    return offers


def _window_bits(value: str | None) -> int | None:
    return int(value) if value is not None and _BITS_RE.match(value) else None


def _accept(params: Offer, server_bits: int, client_bits: int | None,
            force_client_no_context: bool) -> tuple[str, DeflateParams] | None:
    """Answer one permessage-deflate offer (RFC 7692 §7.1), or None to decline it."""
    seen: set[str] = set()
    offered_server_bits: int | None = None
    offered_client_bits: int | bool = False  # False: absent, True: present without value
    client_no_context = force_client_no_context
    for name, value in params:
        if name in seen:
            return None  # §7.1: duplicate parameter
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return None
            if name == "client_no_context_takeover":
                client_no_context = True
        elif name == "server_max_window_bits":
            offered_server_bits = _window_bits(value)
            if offered_server_bits is None:
                return None
        elif name == "client_max_window_bits":
            if value is None:
                offered_client_bits = True
            else:
                bits = _window_bits(value)
                if bits is None:
                    return None
                offered_client_bits = bits
        else:
            return None  # §7.1: unknown parameter
    response = [EXTENSION_NAME, "server_no_context_takeover"]
    if client_no_context:
        response.append("client_no_context_takeover")
    if offered_server_bits is not None:
        server_bits = min(server_bits, offered_server_bits)
        if server_bits < _MIN_ZLIB_BITS:
            return None  # §7.1.2.1: decline what we cannot honour (zlib has no 8-bit deflate)
        response.append(f"server_max_window_bits={server_bits}")
    elif server_bits < 15:
        response.append(f"server_max_window_bits={server_bits}")
    effective_client = 15
    if offered_client_bits is not False:
        if offered_client_bits is not True:
            effective_client = offered_client_bits  # binding on the client even unechoed
        if client_bits is not None and client_bits < effective_client:
            effective_client = client_bits
            response.append(f"client_max_window_bits={client_bits}")
    return "; ".join(response), DeflateParams(
        server_max_window_bits=server_bits,
        client_max_window_bits=effective_client,
        client_no_context_takeover=client_no_context,
    )


def negotiate(offer_header: str | None, *, enabled: bool = True,
              server_max_window_bits: int = 15, client_max_window_bits: int | None = None,
              client_no_context_takeover: bool = False) -> tuple[str, DeflateParams] | None:
    """Accept the first valid permessage-deflate offer (RFC 7692 §5, §7.1).

    Returns the ``Sec-WebSocket-Extensions`` response value and the parameters, or None to
    run without compression.  Offers with unknown, duplicate or malformed parameters are
    declined one by one (§5: declining is not an error); so are offers asking for
    ``server_max_window_bits=8``.  The keyword options are the server's own limits:
    ``server_max_window_bits`` (9-15) caps our compression window, ``client_max_window_bits``
    (9-15) is asked of clients that offer the parameter (§7.1.2.2), and
    ``client_no_context_takeover`` may be imposed on any client (§7.1.1.2).
    """
    if not enabled or not offer_header:
        return None
    if not _MIN_ZLIB_BITS <= server_max_window_bits <= 15:
        raise ValueError("server_max_window_bits must be 9-15")
    if client_max_window_bits is not None and not _MIN_ZLIB_BITS <= client_max_window_bits <= 15:
        raise ValueError("client_max_window_bits must be 9-15")
    for offer in parse_offers(offer_header):
        if offer is None or offer[0] != EXTENSION_NAME:
            continue
        accepted = _accept(offer[1], server_max_window_bits, client_max_window_bits,
                           client_no_context_takeover)
        if accepted is not None:
            return accepted
    return None


# --- Compression, server to client (RFC 7692 §7.2.1) -----------------------------------------

_compressors: dict[int, zlib._Compress] = {}


def compress_shared(data: bytes, params: DeflateParams | int) -> bytes:
    """DEFLATE ``data`` as one self-contained message payload, tail stripped (§7.2.1).

    ``params`` is the negotiated parameters or directly a window size (``variant_key``).
    Uses a cached compressor per window size; ``Z_FULL_FLUSH`` resets its history, so the
    output is independent of earlier calls and valid for every client of that variant.
    """
    bits = params if isinstance(params, int) else params.server_max_window_bits
    compressor = _compressors.get(bits)
    if compressor is None:
        compressor = _compressors[bits] = zlib.compressobj(
            COMPRESS_LEVEL, zlib.DEFLATED, -bits, COMPRESS_MEM_LEVEL)
    try:
        out = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
    except BaseException:
        del _compressors[bits]  # never reuse a compressor left in the middle of a message
        raise
    return out[:-4] if out.endswith(_TAIL) else out


_samplers: list[zlib._Compress] = []


def worth_compressing(data: bytes) -> bool:
    """Whether DEFLATE is likely to shrink ``data`` enough to pay for its CPU (RFC 7692 §6 lets
    any message go out uncompressed).

    Payloads under ``SAMPLE_FROM`` bytes: yes (they cost little either way).  Larger ones: a
    level-1 compression of their first 4 KiB (~30 µs) must save at least 1/16; incompressible
    data (random, already compressed) costs ~25 ms per MB to deflate for nothing.
    """
    if len(data) < SAMPLE_FROM:
        return True
    if not _samplers:
        _samplers.append(zlib.compressobj(1, zlib.DEFLATED, -15, COMPRESS_MEM_LEVEL))
    sampler = _samplers[0]
    try:
        out = sampler.compress(memoryview(data)[:_SAMPLE]) + sampler.flush(zlib.Z_FULL_FLUSH)
    except BaseException:
        _samplers.clear()
        raise
    return len(out) <= _SAMPLE - (_SAMPLE >> 4)


def encode_message(data: str | bytes, deflate: Deflater | DeflateParams | None, *,
                   threshold: int = COMPRESS_THRESHOLD) -> bytes:
    """One complete server frame for ``data``: text if ``str``, binary if ``bytes``.

    When permessage-deflate was negotiated and the payload is at least ``threshold`` bytes,
    the payload is compressed and RSV1 set (RFC 7692 §6); shorter payloads go out plain,
    which §6 allows per message.  For a broadcast, call it once per ``variant_key`` with the
    ``DeflateParams`` and share the bytes.
    """
    if isinstance(data, str):
        opcode = Opcode.TEXT
        payload = data.encode("utf-8")
    else:
        opcode = Opcode.BINARY
        payload = data
    if deflate is None or len(payload) < threshold:
        return encode_frame(opcode, payload)
    params = deflate.params if isinstance(deflate, Deflater) else deflate
    return encode_frame(opcode, compress_shared(payload, params), rsv1=True)


# --- Decompression, client to server (RFC 7692 §7.2.2) ---------------------------------------


class Deflater:
    """Per-connection permessage-deflate state: inflates client messages, deflates ours.

    The decompressor keeps the client's LZ77 window across messages unless
    ``client_no_context_takeover`` was negotiated, in which case it is dropped after each
    message (idle connections then hold no zlib state at all).
    """

    __slots__ = ("_inflater", "_started", "_wbits", "on_inflate", "params")

    def __init__(self, params: DeflateParams, *,
                 on_inflate: Callable[[int], None] | None = None) -> None:
        self.params = params
        self.on_inflate = on_inflate
        """Called with the size of every inflated piece (a budget; it may raise to refuse)."""
        # A larger window than the client's is always safe; zlib clients asked for 8 use 9.
        self._wbits = max(params.client_max_window_bits, _MIN_ZLIB_BITS)
        self._inflater: zlib._Decompress | None = None
        self._started = False

    def compress(self, data: bytes) -> bytes:
        """Compress one whole message payload (§7.2.1), independent of earlier messages."""
        return compress_shared(data, self.params)

    def decompress(self, payload: bytes, *, max_size: int) -> bytes:
        """Inflate one whole message payload (§7.2.2); see ``decompress_fragment``."""
        return self.decompress_fragment(payload, max_size=max_size, fin=True)

    def decompress_fragment(self, data: bytes, *, max_size: int, fin: bool) -> bytes:
        """Inflate the next fragment of a compressed message; ``fin`` marks its last one.

        ``max_size`` is what this fragment may still produce: more raises ``PayloadTooLarge``
        (1009) without inflating further (``max_length`` stops decompression bombs).  A
        corrupt stream raises ``WebSocketError`` with 1007.
        """
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self._wbits)
        if fin:
            if not data and not self._started:
                # An empty compressed message: feeding the bare tail would leave the
                # inflater inside an unfinished stored block.
                return b""
            data += _TAIL
        elif data:
            self._started = True
        try:
            out = inflater.decompress(data, max_size + 1)
        except zlib.error as exc:
            raise WebSocketError(f"corrupt permessage-deflate data: {exc} (RFC 7692 §7.2.2)",
                                 close_code=CloseCode.INVALID_DATA) from None
        if len(out) > max_size:
            raise PayloadTooLarge("decompressed message over the size limit (RFC 7692 §8.1)",
                                  close_code=CloseCode.MESSAGE_TOO_BIG)
        if self.on_inflate is not None:
            self.on_inflate(len(out))
        if inflater.eof:
            # The client ended its stream with a BFINAL block (§7.2.3.4): only our tail
            # may follow it, and the next message starts a new stream.
            rest = inflater.unused_data
            if rest and not (fin and rest == _TAIL):
                raise WebSocketError("data after the final DEFLATE block (RFC 7692 §7.2.2)",
                                     close_code=CloseCode.INVALID_DATA)
            if fin:
                self._inflater = None
        if fin:
            self._started = False
            if self.params.client_no_context_takeover:
                self._inflater = None
        return out
