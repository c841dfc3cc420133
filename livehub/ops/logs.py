"""Log output: ``--log-format text|json`` on the standard ``logging`` module, secrets scrubbed.

``configure`` installs one handler on the root logger.  ``text`` is the classic one-line
format; ``json`` writes one JSON object per line (``ts``, ``level``, ``logger``, ``message``,
plus the structured ``fields`` of access lines: ``livehub.transports.stats``), for Loki, ELK,
CloudWatch and the like.

Secrets are never written: ``Redactor`` (a filter on the handler, so it sees every record of
every logger) replaces the configured secrets themselves (API key, metrics token, token
secrets, Redis password) and anything shaped like a credential (``token=``, ``api_key=``,
``password=``, ``Authorization: Bearer ...``, ``Cookie: ...``, URL user-info passwords) with
``***``.  The access log does not log query strings or headers in the first place; this is the
second line of defence for every other message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

_CREDENTIAL = re.compile(
    r"(?i)((?:access_token|token|api[_-]?key|apikey|password|passwd|secret|jwt|session)"
    r"=)[^\s&;,\"']+"
    r"|(\"(?:\w*token|api_?key|password|secret)\"\s*:\s*\")[^\"]*"
    r"|((?:authorization|cookie|set-cookie|x-api-key)\s*:\s*)[^\r\n\"']+"
    r"|(\b(?:Bearer|Basic|apikey)\s+)[A-Za-z0-9._~+/=-]{4,}"
    r"|(://[^/\s:@]+:)[^@\s/]+(?=@)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets`` and credential-shaped values replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _CREDENTIAL.sub(lambda m: next(g for g in m.groups() if g is not None) + MASK, text)


class Redactor(logging.Filter):
    """Scrubs every record's message (and its structured fields) before it is formatted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v, self.secrets) if isinstance(v, str) else v
                             for k, v in fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info),
                                     self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the record's ``fields`` and ``exception`` when there is one."""

    def __init__(self, static: dict[str, object] | None = None) -> None:
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            **self.static}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: str, fmt: str, *, secrets: Iterable[str] = (), prefix: str = "",
              static: dict[str, object] | None = None) -> None:
    """Send every log record to stderr in ``fmt`` (``text``/``json``) from ``level`` up.

    ``prefix`` goes before the logger name in text (``[worker 1/4 pid 7]``); ``static``
    fields are added to every JSON line (``worker``, ``pid``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redactor(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(static))
    else:
        handler.setFormatter(logging.Formatter(
            TEXT_FORMAT.replace("%(name)s", f"{prefix} %(name)s" if prefix else "%(name)s")))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
