"""Every metric that the docs (``docs/limits.md``, ``docs/operations.md``) and the Grafana
dashboard name is one that ``/metrics`` exports: names cannot drift from the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\b(livehub_[a-z_]+)")
REDIS_ONLY = {"livehub_redis_reconnects_total"}
SUFFIXES = ("_bucket", "_count", "_sum")


def exported(server: LiveServer) -> set[str]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names | REDIS_ONLY


def named_in(text: str) -> set[str]:
    found = set()
    for name in NAME.findall(text):
        base = name
        for suffix in SUFFIXES:
            base = base.removesuffix(suffix)
        found.add(base)
    return found


def test_docs_and_dashboard_name_exported_metrics(server: LiveServer) -> None:
    names = exported(server)
    dashboard = json.loads((ROOT / "docs" / "grafana-livehub.json").read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"]
                     for target in panel["targets"])
    for source, text in (("dashboard", exprs),
                         ("docs/operations.md", (ROOT / "docs/operations.md").read_text()),
                         ("docs/limits.md", (ROOT / "docs/limits.md").read_text())):
        missing = {n for n in named_in(text)
                   if n not in names and n.removesuffix("_total") not in names}
        assert not missing, f"{source} names metrics that are not exported: {sorted(missing)}"
