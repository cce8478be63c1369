// Charts on uPlot. The server sends each series downsampled into buckets on one x grid shared by
// every series of a request; each bucket is drawn as its min and max (in the order they occur), so
// a spike inside a bucket always shows. Two slots per bucket keep the grid shared, so many runs
// fit one uPlot data table.
import uPlot from "/vendor/uplot/uPlot.esm.js";
import { el, formatNumber } from "./dom.js";

const number = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** uPlot's x values are seconds on a time axis; the API's are ms (time, relative) or steps. */
export const xUnit = (xAxis) => (xAxis === "step" ? 1 : 1000);

/**
 * A /series answer (or an /aggregate one: `rows` picks what each series draws) → aligned columns:
 * { xs, ys: [column per series], lastX: the largest real x (API units) }.
 */
export function align(grid, seriesList, xAxis) {
  const { x_min: lo, x_max: hi, bucket_width: w } = grid;
  const slots = w > 1 ? 2 : 1;
  let buckets = 0;
  for (const s of seriesList) if (s.bucket.length) buckets = Math.max(buckets, s.bucket[s.bucket.length - 1] + 1);
  const unit = xUnit(xAxis);
  const xs = new Array(buckets * slots);
  for (let b = 0; b < buckets; b++) {
    const start = lo + b * w;
    xs[b * slots] = start / unit;
    // The second slot stays below the grid's last x, so points appended later come after it.
    if (slots === 2) xs[b * slots + 1] = Math.max(Math.min(start + w / 2, hi), start + 0.25) / unit;
  }
  let lastX = -Infinity;
  const ys = seriesList.map((s) => {
    const column = new Array(xs.length).fill(null);
    for (let i = 0; i < s.bucket.length; i++) {
      const at = s.bucket[i] * slots;
      lastX = Math.max(lastX, s.x_last[i]);
      if (slots === 1 || s.count[i] === 1) {
        column[at] = number(s.last[i]);
      } else if (s.x_of_min[i] <= s.x_of_max[i]) {
        column[at] = number(s.min[i]);
        column[at + 1] = number(s.max[i]);
      } else {
        column[at] = number(s.max[i]);
        column[at + 1] = number(s.min[i]);
      }
    }
    return column;
  });
  return { xs, ys, lastX };
}

/** Bucket centres of an /aggregate answer, and per group the columns named in `fields`. */
export function alignGroups(answer, fields) {
  const { x_min: lo, x_max: hi, bucket_width: w } = answer;
  const unit = xUnit(answer.x_axis);
  let buckets = 0;
  for (const g of answer.groups) if (g.bucket.length) buckets = Math.max(buckets, g.bucket[g.bucket.length - 1] + 1);
  const xs = Array.from({ length: buckets }, (_, b) => Math.min(lo + b * w + (w - 1) / 2, hi) / unit);
  const columns = answer.groups.map((g) =>
    Object.fromEntries(fields.map((f) => {
      const column = new Array(buckets).fill(null);
      g.bucket.forEach((b, i) => { column[b] = number(g[f][i]); });
      return [f, column];
    })),
  );
  return { xs, columns };
}

/** TensorBoard's smoothing: an exponential moving average, debiased at the start. */
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null) return null;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - weight ** n);
  });
}

function hoverPlugin(panel, labels, xLabel, formatX) {
  let frame = 0;
  const show = (u) => {
    frame = 0;
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined) { panel.style.display = "none"; return; }
    const rows = [];
    for (let i = 1; i < u.data.length; i++) {
      if (!labels[i - 1]) continue; // band edges carry no label of their own
      const column = u.data[i];
      const v = column[idx] ?? column[idx - 1] ?? column[idx + 1];
      if (v !== null && v !== undefined) rows.push([labels[i - 1], v]);
    }
    rows.sort((a, b) => b[1] - a[1]);
    const width = Math.min(40, Math.max(...rows.map((r) => r[0].length), 4));
    const lines = rows.map(([label, v]) => `${label.slice(0, 40).padEnd(width)}  ${formatNumber(v)}`);
    panel.textContent = `${xLabel} = ${formatX(u.data[0][idx])}\n${lines.join("\n")}`;
    panel.style.display = rows.length ? "block" : "none";
  };
  return {
    hooks: {
      // Redrawn once per frame however fast the mouse moves (1,000 runs make a long list).
      setCursor: (u) => { if (!frame) frame = requestAnimationFrame(() => show(u)); },
    },
  };
}

/**
 * One chart: `lines` are uPlot series options (label, stroke...), `columns` their y values on `xs`.
 * Options: xAxis, log, smoothing, bands, legend (for up to 12 lines), onZoom(lo, hi) with API x units
 * (null, null: reset).
 */
export class Chart {
  constructor(container, { title, xs, columns, lines, xAxis = "step", log = false, smoothing = 0, bands, onZoom, width, height = 260, legend = true }) {
    this.options = { xAxis, log, smoothing };
    this.raw = columns;
    this.hover = el("pre", { class: "hover" });
    this.root = el("div", { class: "chart", "data-title": title }, el("h3", { text: title }), this.hover);
    container.append(this.root);
    const unit = xUnit(xAxis);
    const xLabel = { step: "step", time: "time", relative: "seconds since start" }[xAxis];
    const formatX = xAxis === "time" ? (x) => new Date(x * 1000).toISOString().slice(0, 19) : formatNumber;
    const labels = lines.map((l) => (l.hoverLabel === undefined ? l.label : l.hoverLabel));
    const markers = xs.length <= 3; // a metric of a point or two has no line to show it
    const opts = {
      width: width || Math.max(320, container.clientWidth - 16),
      height,
      legend: { show: false },
      scales: { x: { time: xAxis === "time" }, y: log ? { distr: 3 } : {} },
      axes: [{ label: xLabel }, { size: 60 }],
      series: [{}, ...lines.map((l) => ({ width: 1.25, spanGaps: true, points: { show: markers }, ...l }))],
      bands,
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      plugins: [hoverPlugin(this.hover, labels, xLabel, formatX)],
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3 || !onZoom) return;
            const lo = u.posToVal(u.select.left, "x");
            const hi = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom(Math.floor(lo * unit), Math.ceil(hi * unit));
          },
        ],
      },
    };
    this.xs = xs;
    this.plot = new uPlot(opts, this.data(), this.root);
    this.root.dataset.series = String(lines.filter((l) => l.hoverLabel !== "").length);
    this.count();
    const named = lines.filter((l) => l.hoverLabel === undefined);
    if (legend && named.length > 1 && named.length <= 12) {
      this.root.append(el("div", { class: "legend" }, named.map((l) =>
        el("span", {}, el("span", { class: "swatch", style: `background: ${l.stroke}` }), l.label))));
    }
    if (onZoom) this.plot.over.addEventListener("dblclick", () => onZoom(null, null));
  }

  data() {
    const { log, smoothing } = this.options;
    const ys = this.raw.map((column) => {
      const smoothed = smooth(column, smoothing);
      return log ? smoothed.map((v) => (v !== null && v > 0 ? v : null)) : smoothed;
    });
    return [this.xs, ...ys];
  }

  /** New points after the last ones (live): xs ascending beyond the current last x. */
  append(xs, columns) {
    this.xs = this.xs.concat(xs);
    this.raw = this.raw.map((column, i) => column.concat(columns[i] || new Array(xs.length).fill(null)));
    this.plot.setData(this.data());
    this.count();
  }

  /** Replaces every point (a zoom's full-resolution answer), keeping the chart. */
  replace(xs, columns) {
    this.xs = xs;
    this.raw = columns;
    this.plot.setData(this.data());
    this.count();
  }

  /** What the chart holds, on its element (tests and the bench read it): points drawn, x range. */
  count() {
    const points = this.raw.reduce((n, column) => n + column.filter((v) => v !== null).length, 0);
    Object.assign(this.root.dataset, { points: String(points), xMin: String(this.xs[0] ?? ""), xMax: String(this.xs[this.xs.length - 1] ?? "") });
  }

  destroy() {
    this.plot.destroy();
    this.root.remove();
  }
}
