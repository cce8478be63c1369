// One experiment: its runs table with a filter, chosen columns, sorting and a selection that the
// compare and group views take. All of it lives in the URL.
import { api } from "./api.js";
import { el } from "./dom.js";
import { current, go, href, list, replaceParams } from "./router.js";
import { RunsTable, columnLabel, firstPage } from "./runs_table.js";
import { subscribe } from "./live.js";

const MAX_SELECTED = 1000;

function defaultColumns(keys) {
  return [...keys.metrics.slice(0, 4).map((k) => `metrics.${k}`), ...keys.params.slice(0, 4).map((k) => `params.${k}`)];
}

export async function experimentView(main, experimentId, params, cleanup) {
  const sort = params.get("sort") || "";
  const filter = params.get("filter") || "";
  const first = firstPage(experimentId, filter, sort); // the rows load while the keys do
  first.catch(() => {}); // its error is shown by the table
  const [experiment, keys] = await Promise.all([api.experiment(experimentId), api.experimentKeys(experimentId)]);
  const state = {
    columns: params.has("cols") ? list(params, "cols") : defaultColumns(keys),
    sort,
    filter,
    selected: new Set(list(params, "sel")),
  };
  const save = () => replaceParams({ cols: state.columns, sort: table.sort, filter: table.filter, sel: [...table.selected] });

  const error = el("span", { class: "error filter-error", role: "alert" });
  const filterInput = el("input", {
    type: "search", class: "filter", placeholder: "metrics.loss < 0.1 and params.lr = '0.01'   (Enter)", "aria-label": "filter",
  });
  filterInput.value = state.filter;
  filterInput.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    table.filter = filterInput.value.trim();
    save();
    table.reload();
  });
  const count = el("span", { class: "muted count" });
  const compare = el("button", { class: "compare", onclick: () => go(["compare"], { exp: experimentId, runs: [...table.selected] }) });
  const group = el("button", { class: "group", onclick: () => go(["group"], { exp: experimentId, runs: [...table.selected] }) });
  const clear = el("button", { text: "Clear selection", onclick: () => { table.selected.clear(); table.draw(); update(); } });
  const selectFirst = el("button", {
    text: `Select first ${MAX_SELECTED}`,
    onclick: async () => { for (const id of await table.firstIds(MAX_SELECTED)) table.selected.add(id); table.draw(); update(); },
  });

  const chooser = columnChooser(keys, state.columns, (columns) => {
    table.columns = state.columns = columns;
    save();
    table.drawHead();
    table.draw();
  });
  main.append(
    el("h1", {}, el("a", { href: "#/", text: "Experiments" }), " / ", el("span", { class: "experiment-name", text: experiment.name })),
    el("div", { class: "toolbar" }, filterInput, chooser, count, selectFirst, clear, compare, group),
    error,
  );
  const table = new RunsTable(main, {
    experimentId,
    ...state,
    onOpen: (runId) => href(["runs", runId]),
    onChange: (changed) => { if (changed) save(); update(); },
    onError: (message) => { error.textContent = message || ""; },
  });
  function update() {
    const n = table.selected.size;
    count.textContent = `${table.total.toLocaleString("en")} runs · ${n} selected`;
    compare.textContent = `Compare (${n})`;
    group.textContent = `Group (${n})`;
    compare.disabled = group.disabled = n === 0 || n > MAX_SELECTED;
    if (current().parts[0] === "experiments") save();
  }
  await table.reload({ first });
  table.scroller.focus();
  cleanup.push(subscribe(() => table.reload({ keepRows: true })));
}

function columnChooser(keys, chosen, onChange) {
  const selected = new Set(chosen);
  const panel = el("div", { class: "panel", hidden: true });
  for (const [kind, names] of Object.entries(keys)) {
    if (!names.length) continue;
    panel.append(el("strong", { text: kind }));
    for (const name of names) {
      const column = `${kind}.${name}`;
      const box = el("input", { type: "checkbox", "data-column": column });
      box.checked = selected.has(column);
      box.addEventListener("change", () => {
        if (box.checked) selected.add(column);
        else selected.delete(column);
        onChange([...selected]);
      });
      panel.append(el("label", {}, box, " ", columnLabel(column)));
    }
  }
  const button = el("button", { class: "columns-button", text: "Columns", onclick: () => { panel.hidden = !panel.hidden; } });
  return el("span", { class: "chooser" }, button, panel);
}
