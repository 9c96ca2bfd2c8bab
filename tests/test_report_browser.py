"""The HTML report in a real browser: headless Chromium driven by Selenium.

Checks that both graphs are drawn (elements with real size), that pan, zoom,
reset and click-to-find work, and that the console stays free of errors.  A
screenshot is kept in the test's temporary directory.
"""
from __future__ import annotations

import re

import pytest

import graphtool
from graphtool.render import write_report

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

from selenium import webdriver  # noqa: E402 - a real dependency: missing it fails


@pytest.fixture()
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture()
def report(resnet50_pb, tmp_path):
    """A report on ResNet50 before/after bypassing every weight-reading Identity."""
    before = graphtool.load(resnet50_pb)
    after = before.copy()
    log = []
    for node in after.nodes_by_op("Identity"):
        if node.input_node(0).op == "Const" and node.consumers:
            readers = [c.name for c in node.consumers]
            after.bypass(node)
            log.append({"rule": "drop-weight-identity", "stage": "cleanup", "root": node.name,
                        "removed": [node.name], "changed": readers})
    assert len(log) > 100
    path = tmp_path / "report.html"
    write_report(path, before, after, log=log, title="ResNet50: weight Identity removal",
                 validation={"opencv": "4.13.0", "outputs": [
                     {"name": "Identity", "max_abs": 3e-6, "max_rel": 1e-4, "passed": True}]})
    return path, before


def transform(driver, panel: str) -> str:
    return driver.execute_script(
        "return document.querySelector(arguments[0] + ' .stage').style.transform",
        f"#panel-{panel}")


def test_report_renders_pans_zooms_and_logs_no_errors(browser, report, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path, before = report
    browser.get(path.as_uri())
    convolutions = len(before.nodes_by_op("Conv2D"))

    for panel in ("before", "after"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#panel-{panel} svg")
        assert svg.size["width"] > 100 and svg.size["height"] > 100
        sizes = browser.execute_script(
            "return Array.from(arguments[0].querySelectorAll('g.node')).map(function (g) {"
            " var b = g.getBBox(); return [b.width, b.height]; })", svg)
        # Every conv layer is its own scope, so each appears as a node or a box.
        assert convolutions <= len(sizes) <= 450, len(sizes)
        assert all(w > 0 and h > 0 for w, h in sizes)

    # Wheel zoom changes the scale; reset brings the initial fit back.
    initial = transform(browser, "before")
    assert re.search(r"scale\(", initial)
    browser.execute_script(
        "var v = document.querySelector('#panel-before .viewport'), r = v.getBoundingClientRect();"
        "v.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: r.left + 200,"
        " clientY: r.top + 150, bubbles: true, cancelable: true}));")
    zoomed = transform(browser, "before")
    assert zoomed != initial
    scale = float(re.search(r"scale\(([\d.]+)\)", zoomed).group(1))
    assert scale > float(re.search(r"scale\(([\d.]+)\)", initial).group(1))

    # Dragging pans.
    viewport = browser.find_element(By.CSS_SELECTOR, "#panel-after .viewport")
    start = transform(browser, "after")
    ActionChains(browser).move_to_element(viewport).click_and_hold().move_by_offset(
        120, 60).release().perform()
    moved = transform(browser, "after")
    assert moved != start and "scale" in moved

    browser.find_element(By.CSS_SELECTOR, "#panel-before .reset").click()
    assert transform(browser, "before") == initial

    # Finding a node by name highlights it in both graphs.
    found = browser.execute_script("return window.graphtoolReport.pick(arguments[0], null)",
                                   before.nodes_by_op("Placeholder")[0].name)
    assert found == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "g.node.picked")) == 2

    assert "drop-weight-identity" in browser.find_element(By.ID, "log").text
    assert "pass" in browser.find_element(By.ID, "validation").text

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    for panel in ("before", "after"):   # the screenshot shows the initial view
        browser.find_element(By.CSS_SELECTOR, f"#panel-{panel} .reset").click()
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
