#!/usr/bin/env python3
"""Run Autobahn|Testsuite against a livehub server started here, and judge the report strictly.

usage: python compliance/autobahn.py [core|deflate|quick|CASE...] [--keep-server]

* installs wstest (Python 2.7 + autobahntestsuite) into ``.autobahn/`` on first use
  (``compliance/install.sh``, ~2 min, then a no-op);
* starts ``python -m livehub serve --config compliance/livehub.toml`` on a free port of
  127.0.0.1: the raw channel WebSocket ``/ws?channel=autobahn:echo`` with client publishing on,
  so every message a client sends comes back to it (see that file for the raised limits);
* runs the fuzzing client on the profile: ``core`` = every case but 12.*/13.* (~300 cases,
  ~30 s), ``deflate`` = permessage-deflate 12.*/13.* x.y.1-9 (~110 cases, several minutes),
  ``quick`` = 1.*-7.*, 10.*; or explicit case ids / patterns (``5.15 6.4.*``);
* stops the server and reads ``.autobahn/reports/<profile>/index.json``.

Strict verdict: every case's ``behavior`` is OK (INFORMATIONAL is accepted for the cases that
only inform) and every ``behaviorClose`` is OK or INFORMATIONAL: no FAILED, no NON-STRICT, no
UNIMPLEMENTED.  Prints the counts and every case that is not plainly OK, writes
``summary.json`` next to the report, and exits 0 only when the profile passes strictly
(1: some case failed, 2: could not run).  Reports: ``.autobahn/reports/<profile>/index.html``.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEST = Path(os.environ.get("AUTOBAHN_HOME", ROOT / ".autobahn"))
CHANNEL = "autobahn:echo"
PROFILES: dict[str, tuple[list[str], list[str], int]] = {
    # cases, excluded cases, time limit in seconds
    "quick": (["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"], [], 600),
    "core": (["*"], ["12.*", "13.*"], 900),
    "deflate": (["12.*", "13.*"], ["12.*.1[0-8]", "13.*.1[0-8]"], 1800),
}
STRICT_BEHAVIOR = {"OK", "INFORMATIONAL"}
STRICT_CLOSE = {"OK", "INFORMATIONAL"}


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(x) for x in case_id.split(".") if x.isdigit())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def install() -> Path:
    wstest = DEST / "bin" / "wstest"
    done = subprocess.run(["bash", str(HERE / "install.sh"), str(DEST)], check=False)
    if done.returncode or not wstest.exists():
        raise SystemExit(2)
    return wstest


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), LIVEHUB_LOG_LEVEL="WARNING")
    env.pop("LIVEHUB_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "livehub", "serve", "--config", str(HERE / "livehub.toml"),
         "--port", str(port), "--api-key", "autobahn"],
        env=env, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the livehub server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the livehub server did not start in 20 s")


def run_wstest(wstest: Path, url: str, name: str,
               profile: tuple[list[str], list[str], int]) -> Path:
    cases, exclude, limit = profile
    out = DEST / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    spec = {"outdir": str(out), "servers": [{"agent": "livehub", "url": url}],
            "cases": cases, "exclude-cases": exclude, "exclude-agent-cases": {}}
    (out / "spec.json").write_text(json.dumps(spec, indent=1))
    with open(out / "wstest.log", "wb") as log:
        try:
            subprocess.run([str(wstest), "-m", "fuzzingclient", "-s", str(out / "spec.json")],
                           stdout=log, stderr=subprocess.STDOUT, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            print(f"wstest did not finish in {limit} s", file=sys.stderr)
    return out


def judge(report: Path) -> int:
    try:
        index = json.loads((report / "index.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"no usable index.json in {report}: {exc}", file=sys.stderr)
        return 2
    failed: list[str] = []
    non_strict: list[str] = []
    total = 0
    for agent, cases in index.items():
        behavior = collections.Counter(c["behavior"] for c in cases.values())
        close = collections.Counter(c["behaviorClose"] for c in cases.values())
        print(f"agent {agent}: {len(cases)} cases")
        print(f"  behavior:      {dict(behavior)}")
        print(f"  behaviorClose: {dict(close)}")
        for cid in sorted(cases, key=case_key):
            total += 1
            b, bc = cases[cid]["behavior"], cases[cid]["behaviorClose"]
            if "NON-STRICT" in (b, bc):
                non_strict.append(cid)
            if b not in STRICT_BEHAVIOR or bc not in STRICT_CLOSE:
                failed.append(cid)
                print(f"  FAIL {cid:10} behavior={b:13} close={bc:13} "
                      f"{cases[cid].get('reportfile', '')}")
    summary = {"cases": total, "failed": len(failed), "non_strict": len(non_strict),
               "failed_cases": failed, "non_strict_cases": non_strict}
    (report / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{total} cases: {total - len(failed)} OK, {len(failed)} not OK "
          f"({len(non_strict)} of them NON-STRICT)")
    return 1 if failed or not total else 0


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    keep = "--keep-server" in argv
    name = args[0] if args else "core"
    if name in PROFILES:
        profile = PROFILES[name]
    else:
        profile, name = (args, [], 900), "cases"
    wstest = install()
    port = free_port()
    server = start_server(port)
    try:
        report = run_wstest(wstest, f"ws://127.0.0.1:{port}/ws?channel={CHANNEL}", name,
                            profile)
    finally:
        if keep:
            print(f"server left running: pid {server.pid}, port {port}")
        else:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"report: {report / 'index.html'}")
    return judge(report)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
