// Group: the chosen runs grouped by params/tags; per group the mean across runs with a std (or
// min/max) band, from /aggregate.
import { api } from "./api.js";
import { alignGroups, Chart } from "./charts.js";
import { color, el } from "./dom.js";
import { list, replaceParams } from "./router.js";
import { chartControls } from "./compare.js";

export async function groupView(main, params, cleanup, rerender) {
  const runIds = list(params, "runs");
  const experimentIds = list(params, "exp");
  const [keys, summaries] = await Promise.all([
    experimentIds.length ? api.experimentKeys(experimentIds[0]) : { params: [], tags: [] },
    api.summaries(runIds),
  ]);
  const metricKeys = [...new Set(summaries.map((s) => s.key))].sort();
  const points = new Map();
  for (const s of summaries) points.set(s.key, (points.get(s.key) || 0) + s.count);
  const longest = [...points.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]; // the most drawable by default
  const by = list(params, "by");
  const key = params.get("key") || longest;
  const band = params.get("band") || "std";
  const set = (changes) => { replaceParams({ ...Object.fromEntries(params.entries()), ...changes }); rerender(); };

  const groupBy = el("select", { class: "group-by", "aria-label": "group by" },
    el("option", { value: "", text: "(no grouping)" }),
    ...keys.params.map((k) => el("option", { value: `params.${k}`, text: `param ${k}` })),
    ...keys.tags.map((k) => el("option", { value: `tags.${k}`, text: `tag ${k}` })));
  groupBy.value = by[0] || "";
  groupBy.addEventListener("change", () => set({ by: groupBy.value }));
  const metric = el("select", { class: "metric", "aria-label": "metric" }, ...metricKeys.map((k) => el("option", { value: k, text: k })));
  metric.value = key;
  metric.addEventListener("change", () => set({ key: metric.value }));
  const bandSelect = el("select", { class: "band", "aria-label": "band" },
    el("option", { value: "std", text: "mean ± std" }), el("option", { value: "minmax", text: "min / max" }));
  bandSelect.value = band;
  bandSelect.addEventListener("change", () => set({ band: bandSelect.value }));
  const ui = chartControls(params, rerender);
  main.append(
    el("h1", { text: `Group ${runIds.length} runs` }),
    el("div", { class: "toolbar" }, el("label", {}, "group by ", groupBy), el("label", {}, "metric ", metric),
      el("label", {}, "band ", bandSelect), ui.controls),
  );
  if (!key) { main.append(el("p", { class: "muted", text: "These runs have no metrics." })); return; }

  const answer = await api.aggregate({
    run_ids: runIds, key, group_by: by, x_axis: ui.options.xAxis, max_points: 500,
    x_min: ui.zoom?.[0] ?? null, x_max: ui.zoom?.[1] ?? null,
  });
  const { xs, columns } = alignGroups(answer, ["mean", "std", "min", "max"]);
  const lines = [];
  const ys = [];
  const bands = [];
  answer.groups.forEach((g, i) => {
    const label = Object.entries(g.group).map(([k, v]) => `${k}=${v}`).join(", ") || "all runs";
    const c = columns[i];
    const lower = band === "std" ? c.mean.map((m, j) => (m === null || c.std[j] === null ? m : m - c.std[j])) : c.min;
    const upper = band === "std" ? c.mean.map((m, j) => (m === null || c.std[j] === null ? m : m + c.std[j])) : c.max;
    const base = ys.length + 1;
    ys.push(c.mean, lower, upper);
    lines.push({ label: `${label} (${g.run_ids.length})`, stroke: color(i), width: 2 },
      { label: "", hoverLabel: "", stroke: "transparent" }, { label: "", hoverLabel: "", stroke: "transparent" });
    bands.push({ series: [base + 2, base + 1], fill: color(i).replace("hsl", "hsla").replace(")", ", 0.15)") });
  });
  main.append(el("div", { class: "legend" }, answer.groups.map((g, i) =>
    el("span", { class: "group-label" }, el("span", { class: "swatch", style: `background: ${color(i)}` }),
      `${Object.entries(g.group).map(([k, v]) => `${k}=${v}`).join(", ") || "all runs"} · ${g.run_ids.length} runs`))));
  const chart = new Chart(main, {
    title: key, xs, columns: ys, lines, bands, legend: false, ...ui.options, width: Math.max(480, main.clientWidth - 40), height: 360,
    onZoom: (lo, hi) => ui.onZoom(lo === null ? null : [lo, hi]),
  });
  ui.onSmoothing((weight) => { chart.options.smoothing = weight; chart.plot.setData(chart.data()); });
  cleanup.push(() => chart.destroy());
}
