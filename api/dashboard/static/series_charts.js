// Metric charts backed by /series: the first answer downsampled to the chart's width, a zoom
// re-asked at full resolution for the visible range, and (live) only the points after the last x.
import { api } from "./api.js";
import { align, Chart } from "./charts.js";
import { color } from "./dom.js";

/** Buckets per series: about a pixel column each, fewer when many runs share the chart. */
export function bucketsFor(width, runs) {
  return Math.max(20, Math.min(width, Math.floor(400_000 / runs)));
}

/**
 * A chart of one metric key for `runs`: [{run_id, label}], or {runIds, labels: a promise of that}.
 * perRank: one line per rank of each run;
 * band: the all-ranks mean with its min/max band. Options as Chart's (xAxis, log, smoothing).
 */
export async function seriesChart(container, { key, runs, perRank = false, band = false, xAxis = "step", zoom = null, onZoom, ...options }) {
  const width = Math.max(320, options.width || container.clientWidth - 16);
  const runIds = runs.runIds || runs.map((r) => r.run_id);
  const buckets = bucketsFor(width, runIds.length);
  const request = (range, points) => ({
    run_ids: runIds, keys: [key], x_axis: xAxis, max_points: points, per_rank: perRank,
    x_min: range?.[0] ?? null, x_max: range?.[1] ?? null,
  });
  let labelOf = new Map();
  // Lines as uPlot draws them, and an id per line (run and rank) to place later points by.
  const shape = (answer) => {
    const aligned = align(answer, answer.series, xAxis);
    const ids = answer.series.map((s) => `${s.run_id}/${s.rank ?? ""}`);
    const lines = answer.series.map((s, i) => {
      const name = labelOf.get(s.run_id) ?? s.run_id;
      return { label: perRank ? `${name} rank ${s.rank}` : name, stroke: color(i) };
    });
    if (!band) return { ...aligned, lines, ids };
    // The mean line, then the min and max edges (unlabelled) filling the band between them.
    const s = answer.series[0];
    const slots = s ? aligned.xs.length / (s.bucket[s.bucket.length - 1] + 1) : 1;
    const ys = ["mean", "min", "max"].map((field) => {
      const column = new Array(aligned.xs.length).fill(null);
      s?.bucket.forEach((b, i) => {
        const v = typeof s[field][i] === "number" ? s[field][i] : null;
        column[b * slots] = v;
        if (slots === 2) column[b * slots + 1] = v;
      });
      return column;
    });
    return {
      xs: aligned.xs, ys, lastX: aligned.lastX, ids: ["mean", "min", "max"],
      lines: [
        { label: `${lines[0]?.label ?? key} mean`, stroke: color(0) },
        { label: "min", hoverLabel: "min", stroke: "transparent" },
        { label: "max", hoverLabel: "max", stroke: "transparent" },
      ],
      bands: [{ series: [3, 2], fill: "rgba(37,87,214,0.18)" }],
    };
  };
  // Labels may still be on their way (runs.labels, a promise): the points are not kept waiting.
  const [answer, labels] = await Promise.all([api.series(request(zoom, buckets)), runs.labels || runs]);
  labelOf = new Map(labels.map((r) => [r.run_id, r.label]));
  const first = shape(answer);
  let lastX = first.lastX;
  const chart = new Chart(container, {
    title: key, xs: first.xs, columns: first.ys, lines: first.lines, bands: first.bands, xAxis, width, ...options,
    onZoom: async (lo, hi) => {
      if (onZoom) return onZoom(lo === null ? null : [lo, hi]); // the caller zooms every chart it has
      // Full resolution for what is visible: as many buckets as pixels (within the budget).
      const answer = shape(await api.series(request(lo === null ? null : [lo, hi], buckets)));
      chart.replace(answer.xs, answer.ys);
      lastX = answer.lastX;
    },
  });
  const position = new Map(first.ids.map((id, i) => [id, i]));
  /** Live: fetch the points after the last one this chart has, and append them (-1: a line the
   * chart lacks appeared, such as a new rank; the caller draws anew). */
  chart.grow = async () => {
    const tail = await api.series(request([Number.isFinite(lastX) ? lastX + 1 : null, null], 2000));
    if (!tail.series.length) return 0;
    const shaped = shape(tail);
    if (shaped.ids.some((id) => !position.has(id))) return -1;
    // The tail holds only the lines that got points: each goes to its own place in the chart.
    const columns = new Array(position.size).fill(null);
    shaped.ids.forEach((id, i) => { columns[position.get(id)] = shaped.ys[i]; });
    chart.append(shaped.xs, columns);
    lastX = shaped.lastX;
    return shaped.xs.length;
  };
  return chart;
}
