"""Result JSON files -> one self-contained HTML page with inline SVG charts (no scripts).

Charts: deliveries per second by server per fan-out case, throughput against subscribers,
latency percentiles per server and transport (log scale), memory per idle connection, echo
round trips; then a table of livehub's figures divided by each peer's and every case in full.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from typing import Any

from livehub.bench.runner import figure

_COLORS = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f",
           "#e53e3e", "#4a5568", "#718096"]
_LIVEHUB = "#c53030"
_PCT = [("p50", "#2b6cb0"), ("p90", "#38a169"), ("p99", "#dd6b20"), ("max", "#e53e3e")]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return s + unit


def bar_chart(title: str, rows: list[tuple[str, float, str]], unit: str = "",
              width: int = 1000) -> str:
    """Horizontal bars: ``(label, value, note)``; livehub's bar is drawn in red."""
    if not rows:
        return ""
    bar_h, gap, left, right = 22, 6, 290, 300
    height = 34 + len(rows) * (bar_h + gap)
    top = max(v for _, v, _ in rows) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-weight="bold">{_e(title)}</text>']
    span = width - left - right
    for i, (label, value, note) in enumerate(rows):
        y = 28 + i * (bar_h + gap)
        w = max(1.0, span * value / top)
        color = _LIVEHUB if label.startswith("livehub") else _COLORS[i % len(_COLORS)]
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{_e(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                     f'fill="{color}"><title>{_e(label)}: {_num(value, unit)}</title></rect>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}">{_num(value, unit)}'
                     f'<tspan fill="#666"> {_e(note)}</tspan></text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], *, x_label: str,
               y_label: str, width: int = 720, height: int = 320) -> str:
    """Lines with dots, one per series, linear axes from zero."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return ""
    left, bottom, top_pad, right = 80, 40, 30, 170
    max_x = max(x for x, _ in points) or 1.0
    max_y = max(y for _, y in points) or 1.0
    pw, ph = width - left - right, height - top_pad - bottom

    def sx(x: float) -> float:
        return left + pw * x / max_x

    def sy(y: float) -> float:
        return top_pad + ph * (1 - y / max_y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{left}" y1="{sy(0)}" x2="{left + pw}" y2="{sy(0)}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{sy(0)}" stroke="#999"/>']
    for k in range(5):
        yv = max_y * k / 4
        parts.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{_num(yv)}</text>')
    for xv in sorted({x for x, _ in points}):
        parts.append(f'<text x="{sx(xv):.1f}" y="{sy(0) + 16:.1f}" text-anchor="middle" '
                     f'font-size="11">{_num(xv)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" '
                 f'font-size="12">{_e(x_label)}</text>')
    parts.append(f'<text x="12" y="{top_pad + ph / 2}" font-size="12" '
                 f'transform="rotate(-90 12 {top_pad + ph / 2})" text-anchor="middle">'
                 f'{_e(y_label)}</text>')
    for i, (name, unsorted) in enumerate(sorted(series.items())):
        color = _LIVEHUB if name.startswith("livehub") else _COLORS[i % len(_COLORS)]
        pts = sorted(unsorted)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                     f'stroke-width="2"/>')
        for x, y in pts:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{color}">'
                         f'<title>{_e(name)} n={_num(x)}: {_num(y)}</title></circle>')
        ly = top_pad + 16 * i
        parts.append(f'<rect x="{left + pw + 12}" y="{ly}" width="10" height="10" '
                     f'fill="{color}"/><text x="{left + pw + 26}" y="{ly + 9}" '
                     f'font-size="12">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def percentile_chart(title: str, rows: list[tuple[str, dict[str, float]]],
                     width: int = 720) -> str:
    """One row per label: p50/p90/p99/max dots on a logarithmic millisecond axis."""
    rows = [(label, pct) for label, pct in rows if pct.get("count")]
    if not rows:
        return ""
    left, right, row_h = 230, 30, 24
    values = [pct[k] for _, pct in rows for k, _ in _PCT if pct.get(k, 0) > 0]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    height = 60 + len(rows) * row_h
    pw = width - left - right

    def sx(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + pw * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-weight="bold">{_e(title)}</text>']
    axis_y = 30 + len(rows) * row_h
    decade = lo
    while decade <= hi * 1.0001:
        x = sx(decade)
        parts.append(f'<line x1="{x:.1f}" y1="26" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" '
                     f'font-size="11">{_num(decade)} ms</text>')
        decade *= 10
    for i, (label, pct) in enumerate(rows):
        y = 30 + i * row_h + row_h / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="12">{_e(label)}</text>')
        xs = [sx(pct[k]) for k, _ in _PCT if pct.get(k)]
        if xs:
            parts.append(f'<line x1="{min(xs):.1f}" y1="{y:.1f}" x2="{max(xs):.1f}" '
                         f'y2="{y:.1f}" stroke="#aaa"/>')
        for key, color in _PCT:
            if pct.get(key):
                parts.append(f'<circle cx="{sx(pct[key]):.1f}" cy="{y:.1f}" r="5" '
                             f'fill="{color}"><title>{_e(label)} {key}: '
                             f'{_num(pct[key])} ms</title></circle>')
    lx = left
    for key, color in _PCT:
        parts.append(f'<circle cx="{lx}" cy="{axis_y + 32}" r="5" fill="{color}"/>'
                     f'<text x="{lx + 9}" y="{axis_y + 36}" font-size="12">{key}</text>')
        lx += 70
    parts.append("</svg>")
    return "".join(parts).replace(f'height="{height}"', f'height="{height + 20}"', 1)


def _cases(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in docs for c in d.get("cases", []) if "figures" in c]


def _label(c: dict[str, Any]) -> str:
    p = c["params"]
    if p["scenario"] == "echo":
        return str(c["server"])
    return f'{c["server"]} ({p.get("transport", "ws")})'


def _groups(cases: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Cases compared together: same group name and same parameters.

    When one group name comes with several parameter sets (result files of different runs),
    the parameters that differ are added to the name.
    """
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cases:
        key = (c["group"] or _label(c), json.dumps(c["params"], sort_keys=True))
        by_key.setdefault(key, []).append(c)
    names: dict[str, list[tuple[str, str]]] = {}
    for key in by_key:
        names.setdefault(key[0], []).append(key)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, keys in names.items():
        for key in keys:
            label = name
            if len(keys) > 1:
                mine = json.loads(key[1])
                others = [json.loads(k[1]) for k in keys if k != key]
                every = sorted({k for o in [mine, *others] for k in o})
                diff = [f"{k}={mine.get(k, '-')}" for k in every
                        if any(o.get(k) != mine.get(k) for o in others)]
                label = f"{name} ({', '.join(diff)})"
            out[label] = by_key[key]
    return out


def _ratio_rows(cases: list[dict[str, Any]]) -> list[str]:
    groups = _groups(cases)
    rows = []
    for group, members in groups.items():
        base = next((m for m in members if m["server"] == "livehub"), None)
        if base is None:
            continue
        key = base["headline"]["figure"]
        higher = base["headline"]["higher_is_better"]
        bv = figure(base["figures"], key)
        for m in members:
            if m["server"] == "livehub":
                continue
            v = figure(m["figures"], key)
            ratio = bv / v if bv is not None and v else None
            good = ratio is not None and (ratio >= 1 if higher else ratio <= 1)
            rows.append(
                f"<tr><td>{_e(group)}</td><td>{_e(key)}</td><td>{_e(m['server'])}</td>"
                f"<td>{_num(bv)}</td><td>{_num(v)}</td>"
                f'<td class="{"good" if good else "bad"}">'
                f"{'-' if ratio is None else f'{ratio:.2f}'}</td></tr>"
            )
    return rows


def _detail_rows(cases: list[dict[str, Any]]) -> list[str]:
    rows = []
    for c in cases:
        f = c["figures"]
        p = c["params"]
        key = c["headline"]["figure"]
        unit = next((v for k, v in f.items() if k.startswith("server_cpu_us_per_")), None)
        lat = f.get("latency_ms") or f.get("rtt_ms") or {}
        params = ", ".join(f"{k}={v}" for k, v in p.items() if k != "scenario")
        rows.append(
            f"<tr><td>{_e(c['group'])}</td><td>{_e(c['server'])}</td>"
            f"<td>{_e(params)}</td><td>{_e(key)} = {_num(figure(f, key))}</td>"
            f"<td>{_num(unit)}</td><td>{_num(f.get('server_cpu_util'))}</td>"
            f"<td>{_num(f.get('gen_cpu_util'))}</td>"
            f"<td>{_num(lat.get('p50'))} / {_num(lat.get('p99'))} / {_num(lat.get('max'))}</td>"
            f"<td>{_num(f.get('bytes_per_delivery'))}</td>"
            f"<td>{f.get('lost', '-')} / {f.get('duplicated', '-')} / "
            f"{f.get('disconnected_by_server', '-')}</td></tr>"
        )
    return rows


def render(docs: list[dict[str, Any]], names: list[str]) -> str:
    """The whole report page."""
    cases = _cases(docs)
    sections: list[str] = []

    fan_groups = {
        name: members for name, members in _groups(cases).items()
        if members[0]["params"]["scenario"] in ("fanout", "churn")
        and not members[0]["params"].get("rate")
    }
    for group, members in fan_groups.items():
        rows = [(_label(m), figure(m["figures"], "deliveries_per_s") or 0.0,
                 f"{_num(m['figures'].get('server_cpu_us_per_delivery'))} us/delivery, "
                 f"gen {_num(100 * (m['figures'].get('gen_cpu_util') or 0))}%")
                for m in members]
        sections.append(bar_chart(f"Fan-out deliveries/s, {group}", rows))

    cpu_rows = []
    wire_rows = []
    for c in cases:
        p = c["params"]
        if p["scenario"] != "fanout":
            continue
        rate = f"{p['rate']:g}/s" if p.get("rate") else "max"
        label = f"{_label(c)} n={p['subscribers']} {rate}"
        unit = c["figures"].get("server_cpu_us_per_delivery")
        core = c["figures"].get("server_core_us_per_delivery")
        if unit is not None:
            cpu_rows.append((label, float(unit), f"core incl. kernel {_num(core)} us"))
        wire = c["figures"].get("bytes_per_delivery")
        if wire is not None:
            wire_rows.append((label, float(wire),
                              f"loopback {_num(c['figures'].get('loopback_bytes_per_delivery'))}"
                              " B incl. TCP/IP"))
    if cpu_rows:
        sections.append(bar_chart("Server CPU per delivery (process time)", cpu_rows, " us"))
    if wire_rows:
        sections.append(bar_chart("Bytes on the wire per delivered 100-byte message", wire_rows,
                                  " B"))

    series: dict[str, list[tuple[float, float]]] = {}
    for c in cases:
        p = c["params"]
        if p["scenario"] == "fanout" and not p.get("rate"):
            v = figure(c["figures"], "deliveries_per_s")
            if v is not None:
                series.setdefault(_label(c), []).append((float(p["subscribers"]), v))
    if any(len(pts) > 1 for pts in series.values()):
        sections.append(line_chart("Throughput against subscribers (as fast as it holds)",
                                   series, x_label="subscribers", y_label="deliveries/s"))

    lat_rows = []
    for c in cases:
        p = c["params"]
        pct = c["figures"].get("latency_ms") or c["figures"].get("rtt_ms")
        if pct:
            rate = f"{p['rate']:g}/s" if p.get("rate") else "max"
            n = p.get("subscribers", p.get("connections"))
            what = "echo rtt" if p["scenario"] == "echo" else f"n={n} {rate}"
            lat_rows.append((f"{_label(c)} {what}", pct))
    if lat_rows:
        sections.append(percentile_chart("Latency percentiles (publish to receive; echo RTT)",
                                         lat_rows))

    mem = [(_label(c), figure(c["figures"], "rss_kib_per_connection") or 0.0,
            f"{_num(c['figures'].get('connect_per_s'))} connects/s")
           for c in cases if c["params"]["scenario"] == "idle"]
    if mem:
        sections.append(bar_chart("Server memory per idle connection", mem, " KiB"))
    echo = [(c["server"], figure(c["figures"], "round_trips_per_s") or 0.0,
             f"{_num(c['figures'].get('server_cpu_us_per_round_trip'))} us/round trip")
            for c in cases if c["params"]["scenario"] == "echo"]
    if echo:
        sections.append(bar_chart("Echo round trips/s", echo))

    ratio_rows = _ratio_rows(cases)
    machine = docs[0].get("machine", {}) if docs else {}
    facts = ", ".join(f"{k}: {v}" for k, v in machine.items())
    commands = "".join(f"<li><code>livehub bench {_e(' '.join(d.get('argv', [])))}</code> "
                       f"({_e(d.get('started', ''))}, {_e(n)})</li>"
                       for d, n in zip(docs, names, strict=False))
    charts = "".join(f'<div class="chart">{s}</div>' for s in sections if s)
    ratio_html = (
        "<table><tr><th>case</th><th>figure</th><th>peer</th><th>livehub</th><th>peer</th>"
        "<th>livehub / peer</th></tr>" + "".join(ratio_rows) + "</table>"
        if ratio_rows else "<p>No case has both livehub and a peer.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>livehub bench: WebSocket vs SSE, measured</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }}
svg {{ font-family: system-ui, sans-serif; font-size: 12px; }}
.chart {{ margin: 1.5em 0; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
td.good {{ background: #e6ffed; }} td.bad {{ background: #ffecec; }}
code {{ background: #f4f4f4; padding: 1px 3px; }}
</style></head><body>
<h1>WebSocket vs SSE, measured</h1>
<p>Machine: {_e(facts)}</p>
<ul>{commands}</ul>
<h2>livehub divided by each peer</h2>
{ratio_html}
<h2>Charts</h2>
{charts}
<h2>Every case</h2>
<table><tr><th>case</th><th>server</th><th>parameters</th><th>headline</th>
<th>server us/unit</th><th>server cpu</th><th>generator cpu</th>
<th>latency ms p50 / p99 / max</th><th>bytes/delivery</th><th>lost / dup / dropped</th></tr>
{"".join(_detail_rows(cases))}
</table>
</body></html>
"""


def markdown(docs: list[dict[str, Any]]) -> str:
    """Markdown tables, one per case group: the headline (median and range over the runs),
    CPU per unit, the generator's and other processes' CPU, loss, and livehub / peer."""
    groups = _groups(_cases(docs))
    out: list[str] = []
    for group, members in groups.items():
        key = members[0]["headline"]["figure"]
        higher = members[0]["headline"]["higher_is_better"]
        base = next((m for m in members if m["server"] == "livehub"), None)
        base_v = base["headline"].get("median") if base else None
        out.append(f"### {group}: {key} ({'higher' if higher else 'lower'} is better)\n")
        out.append("| server | median | min - max | server CPU us/unit | server core us/unit "
                   "| generator CPU | other CPU | lost / dup | livehub / peer |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in members:
            f = m["figures"]
            h = m["headline"]
            unit = next((v for k, v in f.items() if k.startswith("server_cpu_us_per_")), None)
            core = next((v for k, v in f.items() if k.startswith("server_core_us_per_")), None)
            v = h.get("median")
            ratio = "-"
            if base_v is not None and v and m["server"] != "livehub":
                ratio = f"{base_v / v:.2f}"
            runs = len(m.get("runs", []))
            out.append(
                f"| {m['server']} | {_num(v)} | {_num(h.get('min'))} - {_num(h.get('max'))} "
                f"({runs} runs) | {_num(unit)} | {_num(core)} "
                f"| {_num(100 * (f.get('gen_cpu_util') or 0))}% "
                f"| {_num(100 * (f.get('foreign_cpu_util') or 0))}% "
                f"| {f.get('lost', 0)} / {f.get('duplicated', 0)} | {ratio} |"
            )
        out.append("")
    return "\n".join(out)
