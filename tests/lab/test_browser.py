"""The nbmci panel in real JupyterLab and headless Chromium: publish from the panel (issue 6)
and hostile registry text shown as text, with no script run (SE-10)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from nbmci.api import Project
from nbmci.config import load_settings
from tests.lab.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_MESSAGE,
    HOSTILE_METRIC,
    Lab,
    artifact_dir,
    free_port,
    make_project,
    wait_ready,
    write_settings,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a token, over a fresh project; stopped by PID."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    base = tmp_path_factory.mktemp("lab")
    root = base / "project"
    root.mkdir()
    make_project(root)
    write_settings(base / "settings")
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "NBMCI_ROOT": str(root)}
    log = base / "jupyter.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser",
             "--ip", "127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={base / 'settings'}",
             f"--LabApp.workspaces_dir={base / 'workspaces'}",
             "--LabApp.expose_app_in_browser=True"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Lab(f"http://127.0.0.1:{port}", token, root, process, log)
    try:
        wait_ready(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright's bundled driver (no `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    """One JupyterLab page with the nbmci panel open, shared by the tests (a page load takes
    seconds); uncaught page errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(lab.page_url(f"lab/workspaces/{secrets.token_hex(4)}"))  # a fresh layout
    page.locator('li[data-id="nbmci-sidebar"]').click()
    page.locator(".jp-nbmci-Sidebar .nbmci-model").first.wait_for()
    try:
        yield page
    finally:
        context.close()


def version(page: Any, ref: str) -> Any:
    return page.locator(f'.nbmci-version[data-ref="{ref}"]')


def expand(page: Any, name: str) -> None:
    head = page.locator(f'.nbmci-model[data-name="{name}"] .jp-nbmci-ModelHead')
    if head.get_attribute("aria-expanded") != "true":
        head.click()
    page.locator(f'.nbmci-model[data-name="{name}"] .nbmci-version').first.wait_for()


def test_publish_from_the_panel_moves_production(page: Any, lab: Lab,
                                                 request: pytest.FixtureRequest) -> None:
    expand(page, "iris")
    production = '.nbmci-alias[data-alias="production"]'
    version(page, "iris@1").locator(production).wait_for()
    assert version(page, "iris@2").locator(production).count() == 0
    assert version(page, "iris@2").locator('.nbmci-ci[data-status="passed"]').count() == 1

    version(page, "iris@2").locator("button.nbmci-publish").click()
    version(page, "iris@2").locator(production).wait_for()
    assert version(page, "iris@1").locator(production).count() == 0
    header = page.locator('.nbmci-model[data-name="iris"] .jp-nbmci-ModelHead')
    assert "production v2" in header.inner_text()
    project = Project(load_settings(lab.root))
    try:
        assert project.resolve("iris@production") == ("iris", 2)
    finally:
        project.close()

    out = artifact_dir(request.config)
    page.locator(".Toastify__toast", has_text="iris@2").wait_for()
    page.wait_for_timeout(800)  # the toast slides in
    page.screenshot(path=str(out / "lab-sidebar-light.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    page.locator('body[data-jp-theme-light="false"]').wait_for(state="attached")
    page.wait_for_timeout(300)  # the theme's CSS applies after the attribute changes
    page.screenshot(path=str(out / "lab-sidebar-dark.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Light'})")
    print(f"screenshots: {out / 'lab-sidebar-light.png'}, {out / 'lab-sidebar-dark.png'}")
    assert page.errors == []


def test_roll_back_from_the_panel(page: Any) -> None:
    expand(page, "iris")
    production = '.nbmci-alias[data-alias="production"]'
    version(page, "iris@2").locator(production).wait_for()
    page.locator('.nbmci-model[data-name="iris"] button.nbmci-rollback').click()
    version(page, "iris@1").locator(production).wait_for()
    assert version(page, "iris@2").locator(production).count() == 0
    page.locator(".Toastify__toast", has_text="back to iris@1").wait_for()


def test_refused_publish_shows_the_server_reason(page: Any) -> None:
    expand(page, "xss")
    version(page, "xss@1").locator("button.nbmci-publish").click()
    page.locator(".Toastify__toast", has_text="has not passed CI").wait_for()
    assert version(page, "xss@1").locator('.nbmci-alias[data-alias="production"]').count() == 0


def test_se10_hostile_registry_text_is_shown_as_text(page: Any,
                                                     request: pytest.FixtureRequest) -> None:
    expand(page, "xss")
    row = version(page, "xss@1")
    assert row.locator(".jp-nbmci-Message").inner_text() == HOSTILE_MESSAGE
    assert row.locator(".jp-nbmci-MetricName").inner_text() == HOSTILE_METRIC
    page.wait_for_timeout(500)  # time for an injected onerror handler to fire
    assert page.evaluate("typeof window.__pwned") == "undefined"
    sidebar = page.locator(".jp-nbmci-Sidebar")
    assert sidebar.locator("img, script").count() == 0
    assert page.errors == []
    page.screenshot(path=str(artifact_dir(request.config) / "lab-sidebar-se10.png"))


IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                "petal width (cm)"]


def test_servability_chips_and_the_input_schema(page: Any,
                                                request: pytest.FixtureRequest) -> None:
    expand(page, "iris")
    row = version(page, "iris@2")
    chip = row.locator(".nbmci-servability")
    # the verdict is recorded in the background; until then the chip says checking or "?"
    expect(chip).to_have_attribute("data-status", "servable", timeout=30_000)
    expect(chip).to_have_text("servable")
    assert "reproduces its recorded outputs" in (chip.get_attribute("title") or "")

    toggle = row.locator("button.nbmci-inputs")
    toggle.click()
    inputs = row.locator('.jp-nbmci-VersionInputs[data-state="loaded"]')
    expect(inputs).to_have_attribute("data-schema", "yes", timeout=10_000)
    expect(inputs.locator(".jp-nbmci-InputsHead")).to_have_text("Input: a DataFrame, 4 columns")
    columns = inputs.locator(".nbmci-input")
    expect(columns).to_have_text([f"{name} — float" for name in IRIS_COLUMNS])
    assert [c.get_attribute("data-type") for c in columns.all()] == ["float"] * 4
    expect(inputs.locator(".jp-nbmci-InputsOutputs")).to_contain_text("predict → integer")
    assert toggle.get_attribute("aria-expanded") == "true"

    # xss@1 was committed without data or example rows: refused at commit, with the reason
    expand(page, "xss")
    xss = version(page, "xss@1").locator(".nbmci-servability")
    expect(xss).to_have_attribute("data-status", "not-servable", timeout=30_000)
    expect(xss).to_have_text("not servable")
    title = xss.get_attribute("title") or ""
    assert "without example rows" in title and "example=X[:5]" in title
    version(page, "xss@1").locator("button.nbmci-inputs").click()
    xss_inputs = version(page, "xss@1").locator('.jp-nbmci-VersionInputs[data-state="loaded"]')
    expect(xss_inputs).to_have_attribute("data-schema", "no")
    expect(xss_inputs.locator(".nbmci-input")).to_have_text(IRIS_COLUMNS)  # no types known

    page.screenshot(path=str(artifact_dir(request.config) / "lab-sidebar-inputs.png"))
    toggle.click()
    expect(row.locator(".jp-nbmci-VersionInputs")).to_have_count(0)
    version(page, "xss@1").locator("button.nbmci-inputs").click()
    assert page.errors == []


def test_report_opens_the_executed_notebook(page: Any, request: pytest.FixtureRequest) -> None:
    expand(page, "iris")
    version(page, "iris@1").locator("button.nbmci-report").click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="evaluate.ipynb")
    tab.wait_for()
    page.locator(".jp-Notebook .jp-Cell").nth(1).wait_for()  # the executed cells render
    page.screenshot(path=str(artifact_dir(request.config) / "lab-report.png"))


def test_run_ci_from_the_panel_shows_progress_then_the_result(
        page: Any, request: pytest.FixtureRequest) -> None:
    expand(page, "xss")
    row = version(page, "xss@1")
    row.locator("button.nbmci-run-ci").click()
    page.locator('.nbmci-model[data-name="xss"] .jp-nbmci-Progress', has_text="CI").wait_for()
    assert row.locator("button.nbmci-publish").is_disabled()  # while CI runs
    # xss@1 has no "accuracy" metric: the evaluation notebook raises, so CI ends in "error"
    row.locator('.nbmci-ci[data-status="error"]').wait_for(timeout=120_000)
    # the badge can come from the periodic refresh a moment before the job's last poll
    page.locator(".Toastify__toast", has_text="CI error for xss@1").wait_for(timeout=30_000)
    expect(row.locator("button.nbmci-publish")).to_be_enabled(timeout=10_000)
    page.wait_for_timeout(800)  # the toast slides in
    page.screenshot(path=str(artifact_dir(request.config) / "lab-sidebar-ci-error.png"))
    assert page.errors == []
