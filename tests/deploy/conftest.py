"""Two real ``livehub serve`` processes sharing a real Redis, behind a real reverse proxy
(Debian's nginx, Caddy) run from the configurations in ``deploy/`` on 127.0.0.1.

The proxy's configuration is the committed file with only what must differ here rewritten:
the listening address and the upstream addresses.  Every process is stopped by PID.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import LocalAddress
from ..redis_server import RedisServer, free_port, stop_process
from ..serve_process import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ADMIN_PASSWORD = "deploy-test-admin-password"
HEARTBEAT = 0.5
"""The hubs' heartbeat interval here (seconds), so a test sees heartbeats pass the proxy."""


def nginx_config(directory: Path, port: int, upstreams: list[str]) -> Path:
    """``deploy/nginx/livehub.conf`` listening on 127.0.0.1:``port`` in front of
    ``upstreams``, inside a main configuration that keeps every file in ``directory``."""
    site = (DEPLOY / "nginx" / "livehub.conf").read_text()
    site, listens = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", site,
                            flags=re.M)
    site, removed = re.subn(r"^\s*server hub\d+:8000[^;]*;\n", "", site, flags=re.M)
    servers = "".join(f"    server {address} max_fails=0;\n" for address in upstreams)
    site = site.replace("upstream livehub {\n", "upstream livehub {\n" + servers)
    assert (listens, removed) == (1, 2), "deploy/nginx/livehub.conf changed shape"
    (directory / "livehub.conf").write_text(site)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {directory}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = directory / "nginx.conf"
    main.write_text(f"""{user}daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {directory}/access.log;
{temp}    include {directory}/livehub.conf;
}}
""")
    return main


def caddy_config(directory: Path, port: int, upstreams: list[str]) -> Path:
    """``deploy/caddy/Caddyfile`` serving plain http on 127.0.0.1:``port`` (no ACME, no admin
    endpoint) in front of ``upstreams``."""
    text = (DEPLOY / "caddy" / "Caddyfile").read_text()
    text, sites = re.subn(r"^\{\$LIVEHUB_DOMAIN:localhost\} \{",
                          f"http://127.0.0.1:{port} {{", text, flags=re.M)
    text, hubs = re.subn(r"reverse_proxy hub1:8000 hub2:8000",
                         "reverse_proxy " + " ".join(upstreams), text)
    text, options = re.subn(r"^\{\n", "{\n\tadmin off\n\tauto_https off\n", text, count=1,
                            flags=re.M)
    assert (sites, hubs, options) == (1, 1, 1), "deploy/caddy/Caddyfile changed shape"
    path = directory / "Caddyfile"
    path.write_text(text)
    return path


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the proxy exited with {proc.returncode}:\n{log.read_text()[-3000:]}",
                        pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the proxy did not listen within 20 s:\n{log.read_text()[-3000:]}",
                pytrace=False)


class Proxy(LocalAddress):
    """A reverse proxy process in front of the hubs."""

    def __init__(self, kind: str, directory: Path, upstreams: list[str]) -> None:
        self.kind = kind
        self.port = free_port()
        self.log = directory / "proxy.log"
        env = dict(os.environ)
        if kind == "nginx":
            binary = shutil.which("nginx") or "/usr/sbin/nginx"
            if not os.access(binary, os.X_OK):
                pytest.fail("nginx not found: the deployment tests need Debian's nginx "
                            "(apt-get install -y nginx; scripts/test.sh does it)", pytrace=False)
            config = nginx_config(directory, self.port, upstreams)
            argv = [binary, "-p", str(directory), "-c", str(config), "-e",
                    str(directory / "error.log")]
        else:
            binary = shutil.which("caddy") or "/usr/bin/caddy"
            if not os.access(binary, os.X_OK):
                pytest.fail("caddy not found: the deployment tests need Debian's caddy "
                            "(apt-get install -y caddy; scripts/test.sh does it)", pytrace=False)
            config = caddy_config(directory, self.port, upstreams)
            env.update(HOME=str(directory), XDG_DATA_HOME=str(directory / "data"),
                       XDG_CONFIG_HOME=str(directory / "config"))
            argv = [binary, "run", "--config", str(config), "--adapter", "caddyfile"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=directory)
        wait_listening(self.port, self.proc, self.log)

    def stop(self) -> None:
        stop_process(self.proc)


class Deployment:
    """Redis, two hubs and a proxy: what ``deploy/compose.yaml`` runs, on this machine."""

    def __init__(self, proxy: Proxy, hubs: list[ServeProcess]) -> None:
        self.proxy = proxy
        self.hubs = hubs


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["nginx", "caddy"])
def deployment(request: pytest.FixtureRequest, redis: RedisServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    kind: str = request.param
    hubs: list[ServeProcess] = []
    proxy: Proxy | None = None
    try:
        for n in (1, 2):
            directory = tmp_path_factory.mktemp(f"{kind}-hub{n}")
            hub = ServeProcess(
                directory, "--broker", "redis", "--redis-url", redis.url,
                "--trusted-proxies", "127.0.0.1", "--max-connections-per-ip", "1",
                "--heartbeat-interval", str(HEARTBEAT), "--node-name", f"hub{n}",
                env={"LIVEHUB_ADMIN_PASSWORD": ADMIN_PASSWORD})
            hubs.append(hub)
            hub.start()
        proxy = Proxy(kind, tmp_path_factory.mktemp(kind),
                      [f"127.0.0.1:{hub.port}" for hub in hubs])
        yield Deployment(proxy, hubs)
    finally:
        if proxy is not None:
            proxy.stop()
        for hub in hubs:
            hub.stop()
