"""A screenshot of one explorer page over a runs folder (the pictures in docs/explorer.md).

    python scripts/explorer_screenshot.py RUNS_DIR '#/run/ID' OUT.png [--clip SEL] [--wait SEL] [--next N]

Starts the explorer on a free loopback port, opens the page in Debian's Chromium (Playwright),
waits for SELECTOR (default: the page's first figure or canvas) and saves the page, or only the
element --clip names.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from attnlab.explorer.app import create_app
from attnlab.explorer.server import listening_socket, url_of


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path)
    parser.add_argument("page", help="the part after the URL, e.g. '#/run/sprites/sfa-s0'")
    parser.add_argument("out", type=Path)
    parser.add_argument("--wait", default="canvas.overlay, figure img", help="a CSS selector to wait for")
    parser.add_argument("--clip", default=None, help="a CSS selector: save only this element")
    parser.add_argument(
        "--next", type=int, default=0, help="press the viewer's next-example button this often"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(args.runs), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url_of(sock, None) + args.page)
        page.locator(args.wait).first.wait_for(timeout=120_000)
        for n in range(args.next):
            page.click(".attention .next")
            page.locator(f".attention .example:has-text('example {n + 2} of')").wait_for()
            page.locator(args.wait).first.wait_for()
        page.wait_for_timeout(500)  # the overlays are drawn after their images load
        target = page.locator(args.clip).first if args.clip else page
        target.screenshot(path=str(args.out))
        browser.close()
    server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
