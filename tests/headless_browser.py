"""A page in a real headless Chromium (Playwright driving Debian's /usr/bin/chromium), with
script errors collected."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def open_page(html: Path, width: int = 1300) -> Iterator[tuple[object, list[str]]]:
    """``(page, errors)`` for ``html`` once its script has run (``body[data-ready='1']``)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("needs Debian's chromium: apt-get install -y chromium")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("needs the playwright Python package (pip install playwright; no browser download)")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        page.on(
            "console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        )
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        try:
            yield page, errors
        finally:
            browser.close()
