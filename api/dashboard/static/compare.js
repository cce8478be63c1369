// Compare: the chosen runs overlaid, one chart per metric key; x by step, wall time or time since
// each run's start; log scale; smoothing; drag to zoom (every chart re-asks the range at full
// resolution), double-click to zoom out.
import { api, runsByIds } from "./api.js";
import { el } from "./dom.js";
import { list, range, replaceParams } from "./router.js";
import { seriesChart } from "./series_charts.js";

export function chartControls(params, rerender) {
  const x = el("select", { class: "x-axis", "aria-label": "x axis" },
    ...[["step", "step"], ["time", "wall time"], ["relative", "relative time"]].map(([v, t]) => el("option", { value: v, text: t })));
  x.value = params.get("x") || "step";
  const log = el("input", { type: "checkbox", class: "log" });
  log.checked = params.get("log") === "1";
  const smoothing = el("input", { type: "range", class: "smoothing", min: "0", max: "0.99", step: "0.01", "aria-label": "smoothing" });
  smoothing.value = params.get("smooth") || "0";
  const set = (changes) => {
    const next = Object.fromEntries(params.entries());
    Object.assign(next, changes);
    replaceParams(next);
  };
  x.addEventListener("change", () => { set({ x: x.value, zoom: "" }); rerender(); });
  log.addEventListener("change", () => { set({ log: log.checked ? "1" : "" }); rerender(); });
  return {
    controls: el("span", { class: "toolbar" },
      el("label", {}, "x ", x), el("label", {}, log, " log scale"), el("label", {}, "smoothing ", smoothing)),
    options: { xAxis: x.value, log: log.checked, smoothing: Number(smoothing.value) },
    zoom: range(params, "zoom"),
    onSmoothing: (fn) => smoothing.addEventListener("input", () => { set({ smooth: smoothing.value }); fn(Number(smoothing.value)); }),
    onZoom: (range) => { set({ zoom: range ? range.join(",") : "" }); rerender(); },
  };
}

export async function compareView(main, params, cleanup, rerender) {
  const runIds = list(params, "runs");
  const experimentIds = list(params, "exp");
  // Names come while the points do; the keys, unless the URL names them, from the runs' summaries.
  const labels = runsByIds(experimentIds, runIds).then((runs) => runs.map((r) => ({ run_id: r.run_id, label: r.run_name || r.run_id })));
  const keys = list(params, "keys").length ? list(params, "keys") : [...new Set((await api.summaries(runIds)).map((s) => s.key))].sort();
  const ui = chartControls(params, rerender);
  main.append(el("h1", { text: `Compare ${runIds.length} runs` }), ui.controls);
  const charts = el("div", { class: "charts" });
  main.append(charts);
  const labelled = { runIds, labels };
  const drawn = [];
  cleanup.push(() => drawn.forEach((c) => c.destroy()));
  ui.onSmoothing((weight) => drawn.forEach((c) => { c.options.smoothing = weight; c.plot.setData(c.data()); }));
  const width = Math.max(480, main.clientWidth - 40);
  await Promise.all(keys.map(async (key) => {
    const slot = el("div", { class: "chart-slot" }); // keeps the key order whichever answer comes first
    charts.append(slot);
    drawn.push(await seriesChart(slot, { key, runs: labelled, width, height: 320, zoom: ui.zoom, onZoom: ui.onZoom, ...ui.options }));
  }));
}
