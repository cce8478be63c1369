"""The dashboard in a real browser, on data written through the pipeline: what each view shows."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
from playwright.sync_api import Page, expect

import runstream
from tests.browser.conftest import drag_across, open_view, wait_view
from tests.browser.seed import DRIFT_SHIFTS, LRS, TABLE_RUNS, XSS, final_acc, table_run, wait_applied
from tests.integration.roles import REPO


def test_experiments_list_shows_run_counts(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base, "experiments")
    expect(page.locator(f"tr[data-experiment='{ids['table']}'] td.runs")).to_have_text(str(TABLE_RUNS + 1))
    expect(page.locator(f"tr[data-experiment='{ids['distributed']}'] td.runs")).to_have_text("2")
    page.get_by_role("link", name="table", exact=True).click()
    wait_view(page, "experiments")
    expect(page.locator(".count")).to_contain_text(f"{TABLE_RUNS + 1:,} runs")


def first_row_name(page: Page) -> str:
    return page.locator(".grid .row[data-index='0'] .cell.name").inner_text()


def test_runs_table_sorts_filters_and_scrolls(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/experiments/{ids['table']}", "experiments")
    expect(page.locator(".count")).to_contain_text("2,001 runs")
    # Virtual scrolling: a window of rows exists, not 2,001.
    assert page.locator(".grid .row").count() < 80
    by_acc = sorted(range(TABLE_RUNS), key=final_acc)
    page.locator(".grid .head [data-column='metrics.acc']").click()
    expect(page.locator(".grid .row[data-index='0'] .cell.name")).to_have_text(table_run(by_acc[0]).name)
    assert "sort=metrics.acc+ASC" in page.url
    page.locator(".grid .head [data-column='metrics.acc']").click()
    expect(page.locator(".grid .row[data-index='0'] .cell.name")).to_have_text(table_run(by_acc[-1]).name)
    # The last row, once scrolled to: the run without acc sorts last.
    page.locator(".grid").evaluate("g => { g.scrollTop = g.scrollHeight; }")
    expect(page.locator(f".grid .row[data-index='{TABLE_RUNS}'] .cell.name")).to_have_text(XSS)

    page.locator("input.filter").fill("params.lr = '0.01' and metrics.acc > 0.5")
    page.locator("input.filter").press("Enter")
    matching = [i for i in by_acc if LRS[i % 4] == "0.01" and final_acc(i) > 0.5]
    expect(page.locator(".count")).to_contain_text(f"{len(matching):,} runs")
    expect(page.locator(".grid .row[data-index='0'] .cell.name")).to_have_text(table_run(matching[-1]).name)
    lr_cells = page.locator(".grid .row").evaluate_all("rows => rows.map(r => [...r.children].map(c => c.textContent))")
    lr_column = page.locator(".grid .head span").all_inner_texts().index("lr")
    assert {row[lr_column] for row in lr_cells} == {"0.01"}

    page.locator("input.filter").fill("metrics.acc >> 1")
    page.locator("input.filter").press("Enter")
    expect(page.locator(".filter-error")).not_to_be_empty()
    expect(page.locator(".count")).to_contain_text("0 runs")


def test_columns_are_chosen_and_kept_in_the_url(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/experiments/{ids['table']}", "experiments")
    page.locator(".columns-button").click()
    page.locator(".chooser input[data-column='tags.team']").check()
    expect(page.locator(".grid .head [data-column='tags.team']")).to_be_visible()
    assert "tags.team" in parse_qs(urlparse(page.url).fragment.split("?", 1)[1])["cols"][0]
    page.reload()
    wait_view(page, "experiments")
    expect(page.locator(".grid .head [data-column='tags.team']")).to_be_visible()


def test_mlflows_links_open_the_same_views(page: Page, base: str, ids: dict[str, str]) -> None:
    """The run link MLflow's client prints, and its UI's model links, open the run and model pages."""
    open_view(page, base + f"/#/experiments/0/runs/{ids['ranked']}", "runs")
    expect(page.locator(".run-name")).to_have_text("ddp-train")
    open_view(page, base + "/#/models/churn-model/versions/2", "registry")
    expect(page.locator(".versions tbody tr")).to_have_count(3)


def test_run_page_shows_run_ranks_and_artifacts(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/runs/{ids['ranked']}", "runs")
    expect(page.locator(".run-name")).to_have_text("ddp-train")
    expect(page.locator("h1")).to_contain_text("distributed")
    expect(page.locator(".summary")).to_contain_text("FINISHED")
    expect(page.locator(".params")).to_contain_text("world_size")
    expect(page.locator(".params")).to_contain_text("0.003")
    expect(page.locator(".tags")).to_contain_text("torchrun")
    expect(page.locator(".children a")).to_have_text(ids["child"])
    artifacts = page.locator(".artifacts tr")
    expect(artifacts).to_have_count(2)
    expect(artifacts.nth(0)).to_contain_text("model/weights.bin")
    expect(artifacts.nth(0)).to_contain_text("3.0 KiB")
    link = artifacts.nth(0).locator("a").get_attribute("href")
    assert link is not None
    assert page.request.get(base + link).body() == bytes(range(256)) * 12
    # One chart per key; the two ranks' loss as two lines, or their mean with a band.
    expect(page.locator(".chart")).to_have_count(2)
    expect(page.locator(".system-metrics")).to_be_hidden()  # no system/ keys
    expect(page.locator(".chart[data-title='loss']")).to_have_attribute("data-series", "2")
    expect(page.locator(".chart[data-title='loss'] .legend")).to_contain_text("rank 1")
    page.locator("select.rank-mode").select_option("band")
    wait_view(page, "runs")
    expect(page.locator(".chart[data-title='loss']")).to_have_attribute("data-series", "3")
    assert "ranks=band" in page.url
    # Zoom: drag across the loss chart; every chart shows that step range, and the URL keeps it.
    drag_across(page, page.locator(".chart[data-title='loss']"), 0.2, 0.5)
    expect(page).to_have_url(re.compile(r"ranks=band.*zoom=\d+%2C\d+|zoom=\d+%2C\d+.*ranks=band"))
    wait_view(page, "runs")
    low, high = (float(v) for v in parse_qs(page.url.split("?", 1)[1])["zoom"][0].split(","))
    for chart in page.locator(".chart").all():
        shown = [float(chart.get_attribute(f"data-x-{end}") or "nan") for end in ("min", "max")]
        assert low <= shown[0] < shown[1] <= high
    # The child's page links back to its parent.
    page.goto(base + f"/#/runs/{ids['child']}")
    wait_view(page, "runs")
    expect(page.locator(".parents a")).to_have_text(ids["ranked"])


def test_a_run_with_system_metrics_shows_their_charts_in_a_section_below_the_others(page: Page, base: str) -> None:
    run = runstream.start_run("system-metrics", "sampled", tracking_uri=base)
    steps = np.arange(5)
    run.log_metric_arrays("loss", 1 / (1 + steps), steps)
    run.log_metric_arrays("system/cpu_utilization_percentage", [40, 90, 85, 88, 20], steps)
    run.log_metric_arrays("system/system_memory_usage_megabytes", [900, 1200, 1250, 1240, 950], steps)
    wait_applied(base, run.end())
    open_view(page, base + f"/#/runs/{run.run_id}", "runs")
    section = page.locator("section.system-metrics")
    expect(section.locator("h2")).to_have_text("System metrics")
    expect(section.locator(".chart")).to_have_count(2)
    expect(section.locator(".chart[data-title='system/cpu_utilization_percentage']")).to_be_visible()
    expect(page.locator(".chart")).to_have_count(3)
    expect(section.locator(".chart[data-title='loss']")).to_have_count(0)  # the model's metrics stay above
    metrics_box, system_box = page.locator(".chart[data-title='loss']").bounding_box(), section.bounding_box()
    assert metrics_box and system_box and metrics_box["y"] < system_box["y"]


def test_compare_fifty_runs_selected_with_the_keyboard(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/experiments/{ids['table']}", "experiments")
    page.locator(".grid").focus()
    for _ in range(50):
        page.keyboard.press("Space")
        page.keyboard.press("ArrowDown")
    expect(page.locator(".count")).to_contain_text("50 selected")
    page.locator("button.compare").click()
    wait_view(page, "compare")
    loss = page.locator(".chart[data-title='loss']")
    expect(loss).to_have_attribute("data-series", "50")
    # Hovering shows every run's value at that x.
    box = loss.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = loss.locator(".hover")
    expect(hover).to_be_visible()
    lines = hover.inner_text().splitlines()
    assert lines[0].startswith("step = ")
    assert len(lines) == 51
    assert all(re.match(r"run-19\d\d +\d", line) for line in lines[1:])
    # Smoothing changes what is drawn (and the hover's values) without asking the server again.
    requests: list[str] = []
    # (The live view's read-position polls go on meanwhile: they are not a re-read of the data.)
    page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url and "/read-position" not in r.url else None)
    unsmoothed = hover.inner_text()
    page.locator("input.smoothing").fill("0.9")
    page.mouse.move(box["x"] + box["width"] / 2 + 1, box["y"] + box["height"] / 2)
    expect(hover).not_to_have_text(unsmoothed)
    assert "smooth=0.9" in page.url and requests == []
    # Zoom: drag across the middle; every chart re-asks that range (the URL keeps it).
    drag_across(page, loss, 0.3, 0.6)
    expect(page).to_have_url(re.compile(r"zoom=\d+%2C\d+"))
    wait_view(page, "compare")
    zoomed = page.locator(".chart[data-title='loss']")
    assert 20 < float(zoomed.get_attribute("data-x-min") or 0) < float(zoomed.get_attribute("data-x-max") or 0) < 70
    # Log scale and x by relative time, each a URL that reproduces the view.
    page.locator("input.log").check()
    wait_view(page, "compare")
    page.locator("select.x-axis").select_option("relative")
    wait_view(page, "compare")
    assert "log=1" in page.url and "x=relative" in page.url and "zoom" not in page.url
    expect(page.locator(".chart[data-title='loss']")).to_have_attribute("data-series", "50")
    shared = page.url
    page.goto(base)
    wait_view(page, "experiments")
    page.goto(shared)
    wait_view(page, "compare")
    expect(page.locator("select.x-axis")).to_have_value("relative")
    expect(page.locator("input.log")).to_be_checked()


def test_group_by_a_param_shows_each_group_with_a_band(page: Page, base: str, ids: dict[str, str]) -> None:
    runs = ",".join(table_run(i).run_id for i in range(200))
    open_view(page, base + f"/#/group?exp={ids['table']}&runs={runs}&by=params.lr", "group")
    labels = page.locator(".group-label").all_inner_texts()
    assert sorted(labels) == sorted(f"params.lr={lr} · 50 runs" for lr in LRS)
    expect(page.locator(".chart[data-title='loss']")).to_have_attribute("data-series", "4")
    page.locator("select.band").select_option("minmax")
    wait_view(page, "group")
    assert "band=minmax" in page.url
    page.locator("select.group-by").select_option("params.depth")
    wait_view(page, "group")
    expect(page.locator(".group-label")).to_have_count(10)


def test_registry_shows_versions_aliases_gates_and_their_timeline(page: Page, base: str) -> None:
    open_view(page, base + "/#/registry", "registry")
    page.get_by_role("link", name="churn-model").click()
    wait_view(page, "registry")
    expect(page.locator(".versions tbody tr")).to_have_count(3)
    expect(page.locator(".versions tbody tr").nth(1)).to_contain_text("Production")
    expect(page.locator(".versions tbody tr").nth(1)).to_contain_text("@champion")
    champion = page.locator(".lane[data-lane='@champion'] .bar")
    assert champion.all_inner_texts() == ["v1", "v2"]  # auth off: no user to name
    v1 = page.locator(".lane[data-lane='v1 stage'] .bar").all_inner_texts()
    assert [t.split(" · ")[0] for t in v1] == ["None", "Staging", "Production", "Archived"]
    expect(page.locator(".history tbody tr")).to_have_count(18)
    expect(page.locator(".history tbody tr").nth(9)).to_contain_text("@champion → v2 (was v1)")
    # Deployments beside the aliases: prod served v2 then v3, eu-canary v3.
    lanes = page.locator(".lane").evaluate_all("els => els.map(e => e.dataset.lane)")
    assert lanes[:4] == ["@challenger", "@champion", "⇒ eu-canary", "⇒ prod"]
    assert page.locator(".lane[data-lane='⇒ prod'] .bar").all_inner_texts() == ["v2", "v3"]
    expect(page.locator(".history tbody tr").first).to_contain_text("v3 serves in prod (was v2) · release 2.1")
    expect(page.locator(".gates tbody tr")).to_have_count(2)
    expect(page.locator(".gates tbody tr").first).to_contain_text("tags.validation_status IS NULL")
    # Gate decisions on the lanes they decided: the refused move of @champion, the allowed one of @challenger.
    refused = page.locator(".lane[data-lane='@champion'] .gate")
    expect(refused).to_have_count(1)
    expect(refused).to_have_class(re.compile(r"\brefused\b"))
    assert "✕ tags.validation_status = 'passed' (none)" in (refused.get_attribute("title") or "")
    allowed = page.locator(".lane[data-lane='@challenger'] .gate")
    expect(allowed).to_have_class(re.compile(r"\ballowed\b"))
    assert page.locator(".lane[data-lane='@challenger'] .bar").all_inner_texts() == ["v2", "v3", "v1"]
    expect(page.locator(".history tbody tr").nth(4)).to_contain_text("gate allowed")
    expect(page.locator(".history tbody tr").nth(5)).to_contain_text("@champion → v3 (held by v2): ✕")


def test_monitoring_shows_windows_and_drift_above_the_threshold(page: Page, base: str) -> None:
    open_view(page, base + "/#/registry/churn-model", "registry")
    page.locator(".deployments tbody tr", has_text="prod").get_by_role("link", name="monitoring").click()
    wait_view(page, "monitoring")
    expect(page.locator(".monitored")).to_have_text("v3 in prod")
    rows = page.locator(".windows tbody tr")
    expect(rows).to_have_count(len(DRIFT_SHIFTS))
    # Newest first: the two shifted windows are over the model's PSI threshold for x, the others not.
    over = [
        rows.nth(i).locator("td.drift[data-feature='x']").get_attribute("class") or "" for i in range(len(DRIFT_SHIFTS))
    ]
    assert ["over" in c for c in over] == [s > 0 for s in reversed(DRIFT_SHIFTS)]
    chart = page.locator(".chart[data-title='psi per feature']")
    expect(chart).to_have_attribute("data-series", "3")  # x, plan and the threshold
    page.locator("select.statistic").select_option("ks")
    wait_view(page, "monitoring")
    assert "statistic=ks" in page.url
    expect(page.locator(".chart[data-title='ks per feature']")).to_have_attribute(
        "data-series", "1"
    )  # ks: numbers only


def test_a_run_named_as_markup_is_shown_as_text(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/experiments/{ids['table']}?filter=attributes.run_name+LIKE+'%25img%25'", "experiments")
    expect(page.locator(".grid .row[data-index='0'] .cell.name")).to_have_text(XSS)
    page.locator(".grid .row[data-index='0'] .cell.name a").click()
    wait_view(page, "runs")
    expect(page.locator(".run-name")).to_have_text(XSS)
    expect(page.locator(".params")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator(".tags dt")).to_have_text(XSS)
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__xss") is None  # and the page fixture fails on any dialog


def test_back_and_forward_move_between_views(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base, "experiments")
    page.get_by_role("link", name="distributed").click()
    wait_view(page, "experiments")
    page.get_by_role("link", name="ddp-train").click()
    wait_view(page, "runs")
    page.go_back()
    wait_view(page, "experiments")
    expect(page.locator(".experiment-name")).to_have_text("distributed")
    page.go_back()
    wait_view(page, "experiments")
    expect(page.locator("table.experiments")).to_be_visible()
    page.go_forward()
    page.go_forward()
    wait_view(page, "runs")
    expect(page.locator(".run-name")).to_have_text("ddp-train")


def test_a_live_run_grows_without_reload(page: Page, base: str) -> None:
    run_id = uuid.uuid4().hex
    writer = subprocess.Popen([sys.executable, "-m", "tests.browser.live_writer", base, run_id, "12"], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/api/v1/runs/{run_id}/metric-history", params={"key": "loss"}).json()["steps"] == []:
            assert time.monotonic() < deadline, "the writer's first points never became queryable"
            time.sleep(0.2)
        series_bodies: list[str] = []
        page.on("request", lambda r: series_bodies.append(r.post_data or "") if r.url.endswith("/series") else None)
        open_view(page, base + f"/#/runs/{run_id}", "runs")
        page.evaluate("window.__same_page = true")
        chart = page.locator(".chart[data-title='loss']")
        first = int(chart.get_attribute("data-points") or 0)
        page.wait_for_function(
            f"Number(document.querySelector(\".chart[data-title='loss']\").dataset.points) >= {first + 20}",
            timeout=15_000,
        )
        assert page.evaluate("window.__same_page") is True
        # After the first answer, each request asks only for points after the last one it has (how many
        # requests the 20 points took depends on the machine's pace: at least one).
        assert len(series_bodies) >= 2
        assert all('"x_min":null' not in body for body in series_bodies[1:])
        # The runs table of the experiment updates by itself too.
        page.get_by_role("link", name="live").click()
        wait_view(page, "experiments")
        cell = page.locator(f".grid .row[data-run='{run_id}'] .cell.num").first
        before = cell.inner_text()
        expect(cell).not_to_have_text(before, timeout=10_000)
    finally:
        writer.wait(timeout=60)


def test_compare_a_thousand_runs(page: Page, base: str, ids: dict[str, str]) -> None:
    open_view(page, base + f"/#/experiments/{ids['table']}", "experiments")
    page.get_by_role("button", name="Select first 1000").click()
    expect(page.locator(".count")).to_contain_text("1000 selected")
    started = time.monotonic()
    page.locator("button.compare").click()
    wait_view(page, "compare")
    expect(page.locator(".chart[data-title='loss']")).to_have_attribute("data-series", "1000")
    assert time.monotonic() - started < 15


def test_a_live_run_of_two_ranks_grows_per_rank(page: Page, base: str) -> None:
    run_id = uuid.uuid4().hex
    ranks = [runstream.start_run("live", "two-ranks", run_id=run_id, rank=r, tracking_uri=base) for r in (0, 1)]
    for rank, run in enumerate(ranks):
        run.log_metric_arrays("loss", np.full(10, 1.0 + rank), np.arange(10))
        wait_applied(base, run.flush())
    open_view(page, base + f"/#/runs/{run_id}", "runs")
    chart = page.locator(".chart[data-title='loss']")
    expect(chart).to_have_attribute("data-series", "2")
    page.evaluate("window.__same_page = true")
    # Only rank 1 logs on: its points join its own line, the page is not drawn anew.
    ranks[1].log_metric_arrays("loss", np.full(5, 3.0), np.arange(10, 15))
    ranks[1].flush()
    expect(chart).to_have_attribute("data-points", "25", timeout=10_000)
    expect(chart).to_have_attribute("data-x-max", "14")
    assert page.evaluate("window.__same_page") is True
    for run in reversed(ranks):
        run.end()
