"""report.html in a real browser: Debian's chromium, headless, driven by playwright (no download).

The frame player (slider, keys, play) and the explorer it drives (hover, click, filters, search),
checked against the run's own layout files.

Skipped, with the reason, where chromium or the playwright package is missing; CI installs
chromium (.ci/run), so it runs there.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from synthetic_runs import write_run

from latentlapse.core.timelapse import layouts, report

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
    folder = write_run(tmp_path_factory.mktemp("browser") / "run_001", epochs=20, frames=(1, 5, 10, 15, 20),
                       dynamics=True)
    path = report.write_report(folder)
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1300, "height": 900})
            tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("request", lambda request: None if request.url.startswith(("file:", "data:"))
                   else errors.append(f"network request: {request.url}"))
            tab.goto(path.as_uri())
            tab.wait_for_load_state("load")
            tab.folder = folder
            yield tab, errors
        finally:
            browser.close()


def shown(tab) -> tuple[str, str]:
    return tab.get_attribute("#frame", "src"), tab.inner_text("#epoch-label")


def test_page_loads_without_console_errors(page):
    tab, errors = page
    assert tab.title() == "run_001 — latent-space time-lapse report"
    assert tab.is_visible("#ex-canvas") and tab.inner_text("#epoch-label").startswith("Epoch 1 of 20")
    assert not tab.is_visible("#frame")  # the PNG frame sits under the explorer, one click away
    tab.click("#png-frame summary")
    assert tab.is_visible("#frame")
    tab.click("#png-frame summary")
    assert tab.evaluate("window.explorer.frame()") == {"index": 0, "epoch": 1}
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


# ------------------------------------------------------------------------------------ explorer
def layout_at(tab, epoch: int) -> layouts.FrameLayout:
    return layouts.load_layout(layouts.layout_files(tab.folder)[epoch])


def show_epoch(tab, index: int) -> None:
    """Move the player to frame ``index`` and wait until the points have glided there."""
    tab.fill("#slider", str(index))
    for _ in range(100):  # the glide takes 0.45 s (the page's CSP forbids wait_for_function's eval)
        if not tab.evaluate("window.explorer.animating()"):
            break
        tab.wait_for_timeout(20)
    tab.locator("#explorer").scroll_into_view_if_needed()


def isolated_point(tab, ids, part: int) -> tuple[str, dict]:
    """An id of ``ids`` whose point has no other visible point within 12 px, and its position."""
    everything = tab.evaluate("window.explorer.positions()")
    mine = {i: (x, y) for i, x, y in tab.evaluate("(s) => window.explorer.positions(s)", part)}
    for point_id in ids:
        if point_id not in mine:
            continue
        x, y = mine[point_id]
        if sum(abs(px - x) + abs(py - y) <= 12 for _, px, py in everything) == 1:
            return point_id, {"x": x, "y": y}
    raise AssertionError("no isolated point")


def test_hover_shows_the_id_known_from_the_layout_file(page):
    tab, errors = page
    show_epoch(tab, 2)  # epoch 10
    assert tab.evaluate("window.explorer.frame()") == {"index": 2, "epoch": 10}
    frame = layout_at(tab, 10)
    drawn = {i: (x, y) for i, x, y in tab.evaluate("window.explorer.positions(1)")}
    pixels = np.array([drawn[str(i)] for i in frame.val_ids])
    scale = np.polyfit(frame.val_xy[:, 0], pixels[:, 0], 1)[0]
    np.testing.assert_allclose(pixels - pixels.mean(axis=0), (frame.val_xy - frame.val_xy.mean(axis=0)) * [scale, -scale],
                               atol=0.01)  # the map is the layout file, y up
    point_id, where = isolated_point(tab, [str(i) for i in frame.val_ids], part=1)
    k = [str(i) for i in frame.val_ids].index(point_id)
    tab.mouse.move(where["x"], where["y"])
    tip = tab.inner_text("#ex-tip")
    assert tab.is_visible("#ex-tip") and tip.splitlines()[0] == point_id
    names = ("AGN", "HM/LM", "YSO/CV", "NS/HMXB/LMXB/NS_BIN")
    assert f"true class: {names[frame.val_labels[k]]}" in tip and f"predicted: {names[frame.val_pred[k]]}" in tip
    assert f"{names[frame.val_pred[k]]} 0.70" in tip  # the probabilities stored in the layout
    tab.mouse.move(2, 2)
    assert not tab.is_visible("#ex-tip")
    assert errors == []


def test_click_opens_the_panel_with_the_spectrum(page):
    tab, errors = page
    show_epoch(tab, 2)
    point_id, where = isolated_point(tab, [f"T{i:03d}" for i in range(40)], part=0)
    tab.mouse.click(where["x"], where["y"])
    assert tab.get_attribute("#ex-panel", "data-id") == point_id
    assert tab.get_attribute("#ex-spectrum", "data-points") == "380"  # every bin of the 0.5-10 keV grid
    text = tab.inner_text("#ex-panel")
    assert f"Spectrum: {100 + int(point_id[1:])} net counts" in text and "True-class probability" in text
    assert tab.is_visible("#ex-history") and "margin (orange), every epoch" in text  # from dynamics/
    tab.fill("#ex-search", "T001")
    tab.press("#ex-search", "Enter")
    text = tab.inner_text("#ex-panel")
    assert "region: hard-to-learn" in text and "suspect rank: 1 (a suspect)" in text
    assert errors == []


def test_errors_only_leaves_exactly_the_validation_errors_of_the_frame(page):
    tab, errors = page
    show_epoch(tab, 3)  # epoch 15
    frame = layout_at(tab, 15)
    tab.check("#ex-errors")
    try:
        wrong_val = sorted(str(i) for i, t, p in zip(frame.val_ids, frame.val_labels, frame.val_pred) if t != p)
        assert sorted(tab.evaluate("window.explorer.visibleIds(1)")) == wrong_val and len(wrong_val) == 3
        wrong_train = frame.train_ids[np.argmax(frame.train_proba, axis=1) != frame.train_labels].astype(str)
        assert sorted(tab.evaluate("window.explorer.visibleIds(0)")) == sorted(wrong_train.tolist())
        assert tab.inner_text("#ex-count").startswith(f"{len(wrong_val) + len(wrong_train)} of 64 points shown")
    finally:
        tab.uncheck("#ex-errors")
    tab.uncheck('#ex-classes [data-class="0"]')  # the class filter hides AGN
    assert not any(i in tab.evaluate("window.explorer.visibleIds()") for i in ("T000", "T004", "V000"))
    tab.check('#ex-classes [data-class="0"]')
    assert len(tab.evaluate("window.explorer.visibleIds()")) == 64
    tab.check("#ex-suspects")  # dynamics.csv flags T001 and V002
    assert sorted(tab.evaluate("window.explorer.visibleIds()")) == ["T001", "V002"]
    tab.uncheck("#ex-suspects")
    assert errors == []


def test_search_finds_an_id(page):
    tab, errors = page
    tab.check("#ex-errors")  # the search clears a filter that hides what it finds
    tab.fill("#ex-search", "v017")
    tab.press("#ex-search", "Enter")
    assert tab.get_attribute("#ex-panel", "data-id") == "V017"
    assert not tab.is_checked("#ex-errors") and tab.evaluate("window.explorer.position('V017', 1)") is not None
    tab.fill("#ex-search", "no such source")
    tab.press("#ex-search", "Enter")
    assert tab.get_attribute("#ex-search", "data-found") == ""
    assert tab.get_attribute("#ex-panel", "data-id") == "V017"  # the selection stays
    assert errors == []
