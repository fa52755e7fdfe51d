"""report.html in a real browser: Debian's chromium, headless, driven by playwright (no download).

Skipped, with the reason, where chromium or the playwright package is missing; CI installs
chromium (.ci/run), so it runs there.
"""

from __future__ import annotations

import shutil

import pytest
from synthetic_runs import write_run

from latentlapse.timelapse import report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The report of a 5-frame run, opened from disk; yields (page, console and page errors)."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    folder = write_run(tmp_path_factory.mktemp("browser") / "run_001", epochs=20, frames=(1, 5, 10, 15, 20))
    path = report.write_report(folder)
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page()
            tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("request", lambda request: None if request.url.startswith(("file:", "data:"))
                   else errors.append(f"network request: {request.url}"))
            tab.goto(path.as_uri())
            tab.wait_for_load_state("load")
            yield tab, errors
        finally:
            browser.close()


def shown(tab) -> tuple[str, str]:
    return tab.get_attribute("#frame", "src"), tab.inner_text("#epoch-label")


def test_page_loads_without_console_errors(page):
    tab, errors = page
    assert tab.title() == "run_001 — latent-space time-lapse report"
    assert tab.is_visible("#frame") and tab.inner_text("#epoch-label").startswith("Epoch 1 of 20")
    assert errors == []


def test_slider_and_arrow_keys_show_another_epoch(page):
    tab, errors = page
    first_src, first_label = shown(tab)
    tab.fill("#slider", "3")  # sets the value and fires input, as dragging does
    src, label = shown(tab)
    assert src != first_src and label.startswith("Epoch 15 of 20 · frame 4 of 5")
    tab.click("h1")  # focus outside the slider: the page's own key handling
    tab.keyboard.press("ArrowRight")
    assert shown(tab)[1].startswith("Epoch 20 of 20") and shown(tab)[0] != src
    tab.keyboard.press("ArrowRight")  # already at the last frame
    assert shown(tab)[1].startswith("Epoch 20 of 20")
    tab.keyboard.press("Home")
    assert shown(tab) == (first_src, first_label)
    assert tab.inner_text("#frame-numbers").count("validation errors") == 1
    assert errors == []


def test_play_advances_and_pause_stops(page):
    tab, errors = page
    tab.keyboard.press("Home")
    tab.click("#play")
    assert tab.inner_text("#play").endswith("Pause")
    for _ in range(50):  # frames advance every 0.7 s (the page's CSP forbids wait_for_function's eval)
        if tab.inner_text("#epoch-label").startswith("Epoch 5 "):
            break
        tab.wait_for_timeout(100)
    assert tab.inner_text("#epoch-label").startswith("Epoch 5 ")
    tab.click("#play")
    assert tab.inner_text("#play").endswith("Play")
    assert errors == []
