"""Screenshots of the landing page and every demo page for docs/demos.md (headless Chromium).

    .venv/bin/python scripts/demo_screenshots.py docs/demos

Runs a livehub server in demo mode with its simulated market and matches on a free port,
opens each page (two windows where a second person matters), and saves one PNG per page.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from livehub.core.channels import Namespaces, public_options
from livehub.demos.namespaces import DEMO_NAMESPACES
from livehub.transports.context import ServerSettings
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import LiveServer

SIZE = {"width": 1280, "height": 800}


def _shot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"))
    print("saved", out / f"{name}.png")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    server = LiveServer(ServerSettings(api_key="k", port=0, demos=True, clock=True,
                                       demo_market_interval=0.25, demo_match_minute=0.5),
                        Namespaces(public_options(), DEMO_NAMESPACES))
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            a = browser.new_context(viewport=SIZE).new_page()
            b = browser.new_context(viewport=SIZE).new_page()
            a.goto(server.url + "/")
            a.wait_for_timeout(1500)
            _shot(a, out, "landing")
            a.goto(server.url + "/demo/chat?room=lobby&name=Ann")
            b.goto(server.url + "/demo/chat?room=lobby&name=Ben")
            for page, text in ((a, "Hi Ben! Is the deploy done?"), (b, "Yes, all green."),
                               (a, "Great, thanks!")):
                page.fill("#text", text)
                page.press("#text", "Enter")
                page.wait_for_timeout(300)
            b.type("#text", "Sure", delay=50)
            a.wait_for_timeout(800)
            _shot(a, out, "chat")
            a.goto(server.url + "/demo/whiteboard")
            b.goto(server.url + "/demo/whiteboard")
            box = b.locator("canvas").bounding_box()
            assert box is not None
            for k in range(3):
                b.mouse.move(box["x"] + 200, box["y"] + 150 + 80 * k)
                b.mouse.down()
                for i in range(30):
                    b.mouse.move(box["x"] + 200 + i * 20, box["y"] + 150 + 80 * k + (i % 6) * 12)
                b.mouse.up()
            b.mouse.move(box["x"] + 700, box["y"] + 420)
            a.wait_for_timeout(800)
            _shot(a, out, "whiteboard")
            a.goto(server.url + "/demo/ticker")
            a.wait_for_timeout(3000)
            _shot(a, out, "ticker")
            a.goto(server.url + "/demo/scores")
            a.wait_for_timeout(3000)
            _shot(a, out, "scores")
            a.goto(server.url + "/demo/notifications?user=alice")
            b.goto(server.url + "/demo/notifications?user=bob")
            b.wait_for_timeout(800)
            for text in ("Your build is green", "Review requested on #42"):
                b.fill("#text", text)
                b.press("#text", "Enter")
            a.wait_for_timeout(1500)
            _shot(a, out, "notifications")
            a.goto(server.url + "/demo/compare")
            a.wait_for_function("() => window.compare.ws.count >= 200 && "
                                "window.compare.sse.count >= 200")
            a.click("#limit")
            a.wait_for_function("() => window.compare.limit")
            a.click("#drop")
            a.wait_for_function("() => window.compare.ws.back && window.compare.sse.back",
                                timeout=15000)
            a.wait_for_timeout(1000)
            a.screenshot(path=str(out / "compare.png"), full_page=True)
            print("saved", out / "compare.png")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demos"))
