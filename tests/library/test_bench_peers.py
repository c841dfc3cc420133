"""The lab's peers of issue 14, end to end on a tiny run: livehub's ASGI adapter under uvicorn
(fan-out over ws and sse, echo) and python-socketio over its own protocol (fan-out, idle).
Speed is never asserted: only that everything arrived and the figures are there."""

from __future__ import annotations

from pathlib import Path

from tests.bench.test_smoke import check_fanout, lab


def test_livehub_asgi_fanout_ws_sse_and_echo(tmp_path: Path) -> None:
    for transport in ("ws", "sse"):
        doc = lab(tmp_path, "--server", "livehub-asgi", "--transport", transport,
                  "--subscribers", "20", "--probes", "5")
        check_fanout(doc, 20)
    doc = lab(tmp_path, "--server", "livehub-asgi", "--scenario", "echo", "--connections", "4")
    figures = doc["cases"][0]["figures"]
    assert figures["round_trips"] > 0 and figures["rtt_ms"]["count"] == figures["round_trips"]


def test_python_socketio_fanout_and_idle(tmp_path: Path) -> None:
    doc = lab(tmp_path, "--server", "python-socketio", "--transport", "socketio",
              "--subscribers", "20", "--probes", "5")
    check_fanout(doc, 20)
    doc = lab(tmp_path, "--server", "python-socketio", "--scenario", "idle", "--transport",
              "socketio", "--connections", "50")
    figures = doc["cases"][0]["figures"]
    assert figures["connections_open"] == 50 and figures["rss_kib_per_connection"] is not None
