"""What a person sees: Debian's chromium, driven by Playwright, on ``routilux serve``.

No browser is downloaded: Playwright launches /usr/bin/chromium. Screenshots go to
``$ROUTILUX_WEB_SCREENSHOTS`` (docs/images/web for the docs) or the test's temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from web_server import FLOWS, start_server, stop_server

from routilux_kernel.cli import main
from testsupport.components import require_component

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

require_component("chromium")
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'runs.db'}"
    gate = folder / "gate"
    gate.touch()
    assert main(["run", str(FLOWS / "greeting.yaml"), "--jobs", "3", "--store", url]) == 0
    assert main(["run", str(FLOWS / "exploding.yaml"), "--store", url]) == 1
    assert main(["run", str(FLOWS / "gated.yaml"), "--param", f"gate={gate}", "--store", url]) == 0
    gate.unlink()
    served = start_server(url)
    shots = Path(os.environ.get("ROUTILUX_WEB_SCREENSHOTS") or folder / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.set_default_timeout(15_000)
            yield served, page, shots, url, gate
        finally:
            browser.close()
            stop_server(served)


def test_jobs_flows_and_a_failed_jobs_traceback(browser_setup):
    served, page, shots, _, _ = browser_setup
    page.goto(served.url + "/jobs")
    assert page.locator("#job-total").inner_text() == "5"
    assert page.locator("tr[data-job]").count() == 5
    page.screenshot(path=str(shots / "jobs.png"))
    page.select_option("select[name=status]", "failed")
    page.click("button[type=submit]")
    assert page.locator("#job-total").inner_text() == "1"
    page.locator("tr[data-job] a").first.click()
    traceback = page.locator("pre.traceback").first.inner_text()
    assert "ValueError: bad input <script>document.title='owned'</script>" in traceback
    assert page.title().startswith("Job ")  # the markup in the message did not run
    assert page.locator("g.routine[data-routine=boom]").get_attribute("data-status") == "failed"
    page.goto(served.url + "/flows")
    assert page.locator("section[data-flow=greeting] .job-count").inner_text() == "3"
    assert page.locator("section[data-flow=greeting] g.routine").count() == 2
    page.screenshot(path=str(shots / "flows.png"), full_page=True)


def test_a_completed_jobs_graph_timeline_and_shared_data(browser_setup):
    served, page, shots, _, _ = browser_setup
    page.goto(served.url + "/jobs?flow=greeting")
    page.locator("tr[data-job] a").first.click()
    statuses = page.locator("g.routine").evaluate_all("gs => gs.map(g => g.dataset.status)")
    assert statuses == ["completed", "completed"]
    assert page.locator("svg.timeline rect.bar").count() == 2
    assert "<script>document.title='owned'</script>" in page.locator("#shared-data").inner_text()
    assert page.title().startswith("Job ")
    page.screenshot(path=str(shots / "job.png"), full_page=True)


def test_the_live_view_follows_a_running_job_without_reload(browser_setup):
    served, page, shots, url, gate = browser_setup
    page.goto(served.url + "/live")
    page.wait_for_function("document.getElementById('count-completed').textContent === '4'")
    page.evaluate("window.notReloaded = true")
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "routilux_kernel.cli",
            "run",
            str(FLOWS / "gated.yaml"),
            "--param",
            f"gate={gate}",
            "--store",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running = page.locator("#running-jobs tr[data-status=running]")
        running.first.wait_for()
        assert page.locator("#count-running").inner_text() == "1"
        page.screenshot(path=str(shots / "live.png"))
        gate.touch()  # let the job finish
        page.wait_for_function("document.getElementById('count-completed').textContent === '5'")
        assert page.locator("#running-jobs tr").count() == 0
        assert page.evaluate("window.notReloaded") is True
        assert run.wait(30) == 0
    finally:
        if run.poll() is None:
            run.kill()
        gate.unlink(missing_ok=True)


def test_start_and_cancel_a_job_from_the_page(browser_setup):
    served, page, _, _, gate = browser_setup
    page.goto(served.url + "/start?flow=gated")
    page.fill("textarea[name=params]", f'{{"gate": "{gate}"}}')
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs/*")
    assert page.locator("#job-status").inner_text() == "running"
    page.click("button.danger")
    page.wait_for_url("**/jobs/*")
    page.wait_for_function("document.getElementById('job-status').textContent === 'cancelled'")
    page.goto(served.url + "/start")
    page.fill("textarea[name=params]", "{not json")
    page.click("button[type=submit]")
    assert "params: not JSON" in page.locator("#start-problem").inner_text()
