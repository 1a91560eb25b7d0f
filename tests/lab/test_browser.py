"""The nbmci panel in real JupyterLab and headless Chromium: publish from the panel (issue 6),
hostile registry text shown as text, with no script run (SE-10), and the panel saying what is
true (issue 15): buttons enabled only where nbmci would act, toasts in the panel's words, CI
reports named by version and read without a copy in the Jupyter root."""

from __future__ import annotations

import os
import re
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


def toast_text(page: Any, starts: str) -> str:
    """The whole message of the toast that starts with ``starts``, checked for the panel's
    words: not cut off, no CLI command, placeholder or ``name@N`` reference."""
    message = page.locator(".Toastify__toast .jp-toast-message", has_text=starts).first
    message.wait_for(timeout=30_000)
    text = str(message.inner_text()).strip()
    assert text.startswith(starts), text
    assert not text.endswith("…") and "`nbmci" not in text and "NAME@N" not in text, text
    assert "@" not in text, text
    return text


def rollback_button(page: Any, name: str) -> Any:
    return page.locator(f'.nbmci-model[data-name="{name}"] button.nbmci-rollback')


def test_roll_back_is_disabled_without_an_earlier_production_version(page: Any) -> None:
    expand(page, "iris")
    button = rollback_button(page, "iris")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute(
        "title", "Nothing to roll back to: production (v1) has no earlier version")
    expand(page, "xss")
    expect(rollback_button(page, "xss")).to_be_disabled()
    expect(rollback_button(page, "xss")).to_have_attribute(
        "title", "Nothing to roll back: no version is in production")


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

    assert toast_text(page, "Published iris v2") == "Published iris v2; production was v1"
    button = rollback_button(page, "iris")
    expect(button).to_be_enabled()
    expect(button).to_have_attribute("title", "Move production back from v2 to v1")

    out = artifact_dir(request.config)
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
    rollback_button(page, "iris").click()
    version(page, "iris@1").locator(production).wait_for()
    assert version(page, "iris@2").locator(production).count() == 0
    assert toast_text(page, "Rolled iris back") == "Rolled iris back to v1 (from v2)"
    # iris@1 is production again, with nothing before it: what `nbmci rollback iris` says too
    expect(rollback_button(page, "iris")).to_be_disabled()


def test_publish_needs_ci_and_servability_and_force_skips_only_ci(page: Any, lab: Lab) -> None:
    expand(page, "iris")
    expand(page, "xss")
    iris1, iris3, xss1 = version(page, "iris@1"), version(page, "iris@3"), version(page, "xss@1")
    for row in (iris3, xss1):  # their verdicts come from the background check
        expect(row.locator(".nbmci-servability")).not_to_have_attribute(
            "data-status", "checking", timeout=30_000)

    # in production: nothing to publish, nothing to force
    expect(iris1.locator("button.nbmci-publish")).to_be_disabled()
    expect(iris1.locator("button.nbmci-publish")).to_have_attribute("title", "v1 is in production")
    expect(iris1.locator("button.nbmci-publish-force")).to_have_count(0)
    # passed CI and servable: Publish, no force needed
    expect(version(page, "iris@2").locator("button.nbmci-publish")).to_be_enabled()
    expect(version(page, "iris@2").locator("button.nbmci-publish-force")).to_have_count(0)

    # servable, no CI: Publish disabled and says why; Publish anyway says what it skips
    publish, force = iris3.locator("button.nbmci-publish"), iris3.locator(
        "button.nbmci-publish-force")
    expect(iris3.locator(".nbmci-servability")).to_have_attribute("data-status", "servable")
    expect(publish).to_be_disabled()
    expect(publish).to_have_attribute(
        "title", "Publish needs a version that passed CI and is servable: CI has not run on v3.")
    expect(force).to_be_enabled()
    expect(force).to_have_text("Publish anyway")
    assert force.get_attribute("title") == (
        "Publish v3 anyway: CI has not run on v3. Force skips the CI gates (the override is "
        "recorded), never the servability check.")

    # not servable: refused even with force, as `nbmci publish --force` refuses it
    expect(xss1.locator(".nbmci-servability")).to_have_attribute("data-status", "not-servable")
    expect(xss1.locator("button.nbmci-publish")).to_be_disabled()
    title = xss1.locator("button.nbmci-publish").get_attribute("title") or ""
    assert "CI has not run on v1" in title and "v1 is not servable: " in title
    expect(xss1.locator("button.nbmci-publish-force")).to_be_disabled()
    assert (xss1.locator("button.nbmci-publish-force").get_attribute("title") or "").startswith(
        "Force skips only the CI gates, never the servability check: v1 is not servable: ")

    force.click()
    iris3.locator('.nbmci-alias[data-alias="production"]').wait_for()
    assert toast_text(page, "Published iris v3") == (
        "Published iris v3 with force, past its CI gates (the override is recorded); "
        "production was v1")
    project = Project(load_settings(lab.root))
    try:
        assert project.resolve("iris@production") == ("iris", 3)
    finally:
        project.close()
    expect(rollback_button(page, "iris")).to_have_attribute(
        "title", "Move production back from v3 to v1")
    assert page.errors == []


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


def test_report_opens_the_executed_notebook(page: Any, lab: Lab,
                                            request: pytest.FixtureRequest) -> None:
    expand(page, "iris")
    version(page, "iris@1").locator("button.nbmci-report").click()
    # the tab says which version the report is for
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="iris v1 · evaluate.ipynb")
    tab.wait_for()
    page.locator(".jp-Notebook .jp-Cell").nth(1).wait_for()  # the executed cells render
    assert toast_text(page, "Opened the CI report") == (
        "Opened the CI report of iris v1 (notebooks/evaluate.ipynb, read-only)")
    # JupyterLab checkpoints only what it can save; it listed none for the read-only report
    expect(tab).to_have_attribute("title", re.compile("Last Checkpoint: None"))
    # the report is read from the registry: no copy in the Jupyter root, no checkpoints of one
    assert not list(lab.root.rglob(".ipynb_checkpoints"))
    assert not (lab.root / "nbmci-reports").exists()
    assert page.errors == []
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
    text = toast_text(page, "CI of xss v1 had errors: ")
    assert "notebooks/evaluate.ipynb" in text and "accuracy" in text, text
    expect(row.locator("button.nbmci-run-ci")).to_be_enabled(timeout=10_000)
    # the CI error is now a reason not to publish, besides not being servable
    assert "CI error on v1" in (row.locator("button.nbmci-publish").get_attribute("title") or "")
    assert row.locator("button.nbmci-publish").is_disabled()
    page.wait_for_timeout(800)  # the toast slides in
    page.screenshot(path=str(artifact_dir(request.config) / "lab-sidebar-ci-error.png"))
    assert page.errors == []
