// One run: params, tags, status, duration, parent and children, artifacts, and a chart per metric
// key (per-rank lines, or the mean with a min/max band), system/ keys in a section of their own.
// While it runs, the charts grow live.
import { api } from "./api.js";
import { el, fileSize, formatDuration, formatTime } from "./dom.js";
import { href, range, replaceParams } from "./router.js";
import { seriesChart } from "./series_charts.js";
import { subscribe } from "./live.js";

function keyValues(title, entries, cls) {
  return el("section", { class: cls },
    el("h2", { text: title }),
    entries.length
      ? el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]))
      : el("p", { class: "muted", text: "none" }),
  );
}

const runLink = (id) => el("a", { href: href(["runs", id]), text: id });

export async function runView(main, runId, params, cleanup) {
  const [run, parents, children, files] = await Promise.all([
    api.run(runId), api.parents(runId), api.children(runId), api.artifacts(runId).catch(() => []),
  ]);
  const experimentLink = el("a", { href: href(["experiments", run.experiment_id]), text: run.experiment_id });
  api.experiment(run.experiment_id).then((e) => { experimentLink.textContent = e.name; }, () => {}); // the charts need not wait
  const ranks = params.get("ranks") || "lines"; // lines: one per rank; band: mean with min/max
  const status = el("span", { class: "status", text: run.status });
  const duration = el("span", { class: "duration" });
  const showDuration = (r) => { duration.textContent = formatDuration((r.end_time ?? Date.now()) - r.start_time); };
  showDuration(run);
  main.append(
    el("h1", {},
      experimentLink,
      " / ", el("span", { class: "run-name", text: run.run_name || run.run_id })),
    el("dl", { class: "kv summary" },
      el("dt", { text: "run id" }), el("dd", { text: run.run_id }),
      el("dt", { text: "status" }), el("dd", {}, status),
      el("dt", { text: "started" }), el("dd", { text: formatTime(run.start_time) }),
      el("dt", { text: "duration" }), el("dd", {}, duration),
      el("dt", { text: "user" }), el("dd", { text: run.user_id }),
      el("dt", { text: "parents" }), el("dd", { class: "parents" }, parents.length ? parents.map(runLink) : "none"),
      el("dt", { text: "children" }), el("dd", { class: "children" }, children.length ? children.flatMap((c) => [runLink(c), " "]) : "none"),
    ),
    el("div", { class: "columns" },
      keyValues("Params", Object.entries(run.params), "params"),
      keyValues("Tags", Object.entries(run.tags), "tags"),
      artifactList(runId, files),
    ),
  );
  const modeSelect = el("select", { class: "rank-mode", "aria-label": "ranks" },
    el("option", { value: "lines", text: "per-rank lines" }), el("option", { value: "band", text: "mean with min/max band" }));
  modeSelect.value = ranks;
  // A change of rank mode or zoom is a new URL for this view, drawn again from it.
  const redraw = (changes) => {
    replaceParams({ ...Object.fromEntries(params.entries()), ...changes });
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  };
  modeSelect.addEventListener("change", () => redraw({ ranks: modeSelect.value }));
  // Every chart shows the zoomed step range, which the URL keeps.
  const zoom = range(params, "zoom");
  const onZoom = (r) => redraw({ zoom: r ? r.join(",") : "" });
  const charts = el("div", { class: "charts" });
  // The machine's own series (runstream's SystemMetrics, MLflow's system/ keys) below the model's.
  const systemCharts = el("div", { class: "charts" });
  const systemSection = el("section", { class: "system-metrics", hidden: true }, el("h2", { text: "System metrics" }), systemCharts);
  main.append(el("h2", {}, "Metrics ", modeSelect), charts, systemSection);

  const drawn = new Map();
  const addCharts = async (keys) => {
    // Every key's request at once; each chart takes its place in key order as its answer comes.
    const added = keys.filter((k) => !drawn.has(k)).sort().map((key) => {
      const slot = el("div", { class: "chart-slot" });
      if (key.startsWith("system/")) {
        systemCharts.append(slot);
        systemSection.hidden = false;
      } else {
        charts.append(slot);
      }
      drawn.set(key, null);
      return seriesChart(slot, {
        key, runs: [{ run_id: runId, label: run.run_name || runId }], perRank: ranks === "lines", band: ranks === "band", width: 560,
        zoom, onZoom,
      }).then((chart) => drawn.set(key, chart));
    });
    await Promise.all(added);
  };
  await addCharts(Object.keys(run.metrics));
  if (!drawn.size) charts.append(el("p", { class: "muted", text: "No metrics." }));
  cleanup.push(() => drawn.forEach((c) => c?.destroy()));

  if (run.status === "RUNNING") {
    const stop = subscribe(async () => {
      const now = await api.run(runId);
      status.textContent = now.status;
      showDuration(now);
      await addCharts(Object.keys(now.metrics));
      for (const chart of drawn.values()) {
        if (chart && (await chart.grow()) < 0) window.dispatchEvent(new HashChangeEvent("hashchange"));
      }
      if (now.status !== "RUNNING") stop();
    });
    cleanup.push(stop);
  }
}

function artifactList(runId, files) {
  const rows = files.map((f) =>
    el("tr", {},
      el("td", {}, el("a", { href: api.artifactUrl(runId, f.path), download: f.path.split("/").pop(), text: f.path })),
      el("td", { class: "size", text: fileSize(f.size) }),
    ),
  );
  return el("section", { class: "artifacts" },
    el("h2", { text: "Artifacts" }),
    rows.length ? el("table", { class: "plain" }, el("tbody", {}, rows)) : el("p", { class: "muted", text: "none" }),
  );
}
