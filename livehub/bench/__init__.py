"""livehub bench: a bounded, loopback-only load lab for livehub and peer servers.

Layout (imports point one way, top to bottom):

- ``wire``: pure byte helpers (WebSocket client frames, HTTP heads, bench payloads);
- ``stats``: percentiles and per-run counters;
- ``clients``: cheap uvloop ``asyncio.Protocol`` clients, one per transport;
- ``procstat`` / ``machine``: /proc readings (server CPU, RSS, loopback bytes) and machine facts;
- ``servers`` / ``peers``: how to install, start and stop livehub and the peer servers;
- ``scenarios``: fanout, echo, idle and churn, each bounded in count and time;
- ``runner`` / ``report`` / ``cli``: plans, JSON results, the HTML report, the command line.
"""

from __future__ import annotations
