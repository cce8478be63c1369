// The runs table of an experiment: a window of rows over any number of runs. Only the rows in view
// exist in the DOM, and they are fetched by page (offset) as the table scrolls; sorting and
// filtering are the search API's (MLflow's grammar), so 100,000 runs cost what one page costs.
import { api } from "./api.js";
import { el, formatDuration, formatNumber, formatTime } from "./dom.js";

const ROW = 28; // px, as --row in style.css
const PAGE = 100;

/** A column: "attributes.<name>", "params.<key>", "tags.<key>" or "metrics.<key>". */
export function columnLabel(column) {
  const [kind, ...rest] = column.split(".");
  const key = rest.join(".");
  return kind === "attributes" ? { run_name: "Name", status: "Status", start_time: "Started", duration: "Duration" }[key] : key;
}

/** The column as order_by names it (backticks around keys with other than word characters). */
export function orderKey(column) {
  const [kind, ...rest] = column.split(".");
  const key = rest.join(".");
  return /^\w+$/.test(key) ? `${kind}.${key}` : `${kind}.\`${key}\``;
}

function cellValue(run, column) {
  const [kind, ...rest] = column.split(".");
  const key = rest.join(".");
  if (kind === "params") return run.params[key] ?? "";
  if (kind === "tags") return run.tags[key] ?? "";
  if (kind === "metrics") return formatNumber(run.metrics[key]?.value);
  if (key === "start_time") return formatTime(run.start_time);
  if (key === "duration") return formatDuration((run.end_time ?? Date.now()) - run.start_time);
  return run[key] ?? "";
}

function searchPage(experimentId, filter, sort, page, count) {
  return api.searchRuns({
    experiment_ids: [experimentId], filter, order_by: sort ? [sort] : [], offset: page * PAGE, max_results: PAGE, count,
  });
}

/** The request for a table's first page and count, to start before the table exists. */
export function firstPage(experimentId, filter, sort) {
  return searchPage(experimentId, filter, sort, 0, true);
}

export class RunsTable {
  constructor(container, { experimentId, columns, sort, filter, selected, onOpen, onChange, onError }) {
    Object.assign(this, { experimentId, columns, sort, filter, selected, onOpen, onChange, onError });
    this.total = 0;
    this.pages = new Map();
    this.generation = 0;
    this.focus = 0;
    this.head = el("div", { class: "head" });
    this.body = el("div", { class: "body", style: "position: relative" });
    this.scroller = el("div", { class: "grid", tabindex: "0", role: "grid" }, this.head, this.body);
    this.scroller.addEventListener("scroll", () => this.schedule());
    this.scroller.addEventListener("keydown", (e) => this.key(e));
    container.append(this.scroller);
  }

  /** Everything anew: the count and the first page (a new filter, sort or live update). `first`:
   * that request already made (by firstPage), so it ran while the rest of the view loaded. */
  async reload({ keepRows = false, first: prefetched = null } = {}) {
    const generation = ++this.generation;
    const old = this.pages;
    this.pages = new Map();
    if (prefetched) this.track(0, prefetched);
    if (keepRows) {
      this.stale = old; // shown until the fresh pages arrive, so a live update never flickers
    } else {
      this.stale = null;
      this.scroller.scrollTop = 0; // a new filter or order starts at its first row
      this.focus = 0;
    }
    try {
      const first = await this.fetchPage(0, true);
      if (generation !== this.generation) return;
      this.total = first.total_count;
      this.onError(null);
    } catch (err) {
      if (generation !== this.generation) return;
      this.total = 0;
      this.onError(err.message);
    }
    this.body.style.height = `${this.total * ROW}px`;
    this.drawHead();
    this.draw();
    this.onChange();
  }

  fetchPage(page, count = false) {
    if (!this.pages.has(page)) {
      this.track(page, searchPage(this.experimentId, this.filter, this.sort, page, count));
    }
    return Promise.resolve(this.pages.get(page));
  }

  /** A page's request in flight, replaced by its answer once it arrives (dropped if it fails). */
  track(page, request) {
    const pages = this.pages;
    pages.set(page, request);
    request.then((answer) => { pages.set(page, answer); this.schedule(); }, () => pages.delete(page));
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  row(i) {
    const page = this.pages.get(Math.floor(i / PAGE)) ?? this.stale?.get(Math.floor(i / PAGE));
    return page?.runs ? page.runs[i % PAGE] : undefined;
  }

  drawHead() {
    const [sortColumn, direction] = (this.sort || "").split(/ (?=ASC$|DESC$)/);
    const cells = [el("span", { class: "cell check" })];
    for (const column of ["attributes.run_name", "attributes.status", "attributes.start_time", "attributes.duration", ...this.columns]) {
      const sortable = column !== "attributes.duration";
      const sorted = sortable && orderKey(column) === sortColumn;
      const classes = ["cell", column === "attributes.run_name" ? "name" : "", column.startsWith("metrics.") ? "num" : "",
        sorted ? `sorted-${(direction || "ASC").toLowerCase()}` : ""].join(" ");
      cells.push(el("span", {
        class: classes,
        title: column,
        "data-column": column,
        text: columnLabel(column),
        onclick: sortable ? () => this.sortBy(column) : null,
      }));
    }
    this.head.replaceChildren(...cells);
    this.head.style.width = `${32 + 220 + (3 + this.columns.length) * 165}px`;
  }

  sortBy(column) {
    const key = orderKey(column);
    this.sort = this.sort === `${key} ASC` ? `${key} DESC` : `${key} ASC`;
    this.onChange({ sort: this.sort });
    this.reload();
  }

  draw() {
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - 5);
    const last = Math.min(this.total, first + Math.ceil(this.scroller.clientHeight / ROW) + 10);
    for (let p = Math.floor(first / PAGE); p * PAGE < last; p++) if (!this.pages.has(p)) this.fetchPage(p);
    const rows = [];
    for (let i = first; i < last; i++) rows.push(this.drawRow(i, this.row(i)));
    this.body.replaceChildren(...rows);
  }

  drawRow(i, run) {
    const style = `top: ${i * ROW}px`;
    if (!run) return el("div", { class: "row loading", style }, el("span", { class: "cell muted", text: "…" }));
    const selected = this.selected.has(run.run_id);
    const check = el("input", { type: "checkbox", tabindex: "-1", "aria-label": "select run" });
    check.checked = selected;
    check.addEventListener("change", () => this.toggle(run.run_id));
    const cells = [el("span", { class: "cell check" }, check)];
    cells.push(el("span", { class: "cell name" }, el("a", { href: this.onOpen(run.run_id), text: run.run_name || run.run_id })));
    for (const column of ["attributes.status", "attributes.start_time", "attributes.duration", ...this.columns]) {
      const text = String(cellValue(run, column));
      cells.push(el("span", { class: `cell${column.startsWith("metrics.") ? " num" : ""}`, title: text, text }));
    }
    const classes = `row${selected ? " selected" : ""}${i === this.focus ? " focused" : ""}`;
    return el("div", { class: classes, style, "data-run": run.run_id, "data-index": String(i) }, cells);
  }

  toggle(runId) {
    if (this.selected.has(runId)) this.selected.delete(runId);
    else this.selected.add(runId);
    this.draw();
    this.onChange();
  }

  key(e) {
    const visible = Math.floor(this.scroller.clientHeight / ROW) - 1;
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: visible, PageUp: -visible, Home: -Infinity, End: Infinity };
    if (e.key in moves) {
      this.focus = Math.max(0, Math.min(this.total - 1, this.focus + moves[e.key]));
      const y = this.focus * ROW;
      if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
      else if (y + 2 * ROW > this.scroller.scrollTop + this.scroller.clientHeight) this.scroller.scrollTop = y + 2 * ROW - this.scroller.clientHeight;
      this.draw();
    } else if (e.key === " " && this.row(this.focus)) {
      this.toggle(this.row(this.focus).run_id);
    } else if (e.key === "Enter" && this.row(this.focus)) {
      location.hash = this.onOpen(this.row(this.focus).run_id);
    } else {
      return;
    }
    e.preventDefault();
  }

  /** Ids of the first `n` runs as currently filtered and sorted. */
  async firstIds(n) {
    const answer = await api.searchRuns({
      experiment_ids: [this.experimentId], filter: this.filter, order_by: this.sort ? [this.sort] : [], max_results: n,
    });
    return answer.runs.map((r) => r.run_id);
  }
}
