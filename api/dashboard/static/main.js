// The page's entry: draws the view the URL names, anew on every URL change (back/forward too).
import { el } from "./dom.js";
import { current } from "./router.js";
import { experimentsView } from "./experiments.js";
import { experimentView } from "./experiment.js";
import { runView } from "./run_page.js";
import { compareView } from "./compare.js";
import { groupView } from "./group.js";
import { modelView, registryView } from "./registry.js";
import { monitoringView } from "./monitoring.js";

let cleanup = [];
let rendering = 0;

async function render() {
  const ticket = ++rendering;
  for (const fn of cleanup.splice(0)) fn(); // emptied: what a superseded drawing adds later is its own to undo
  const mine = (cleanup = []);
  // Each drawing gets its own container: a slower earlier one finishing late writes to a detached node.
  const main = el("div", { class: "view" });
  const root = document.getElementById("main");
  root.replaceChildren(main);
  root.dataset.view = "";
  const { parts, params } = current();
  const [view = "experiments", id] = mlflowLink(parts) || parts;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === (["registry", "monitoring"].includes(view) ? "registry" : "experiments"));
  const views = {
    experiments: () => (id ? experimentView(main, id, params, mine) : experimentsView(main)),
    runs: () => runView(main, id, params, mine),
    compare: () => compareView(main, params, mine, render),
    group: () => groupView(main, params, mine, render),
    registry: () => (id ? modelView(main, id) : registryView(main)),
    monitoring: () => monitoringView(main, id, params),
  };
  try {
    if (!views[view]) throw new Error(`no view ${view}`);
    await views[view]();
    if (ticket === rendering) root.dataset.view = view; // tests wait on this: the view is drawn
  } catch (err) {
    if (ticket !== rendering) return;
    main.append(el("p", { class: "error", role: "alert", text: err.message }));
    root.dataset.view = "error";
  }
  if (ticket !== rendering) for (const fn of mine.splice(0)) fn(); // superseded while drawing
}

/** MLflow's own links, as its client prints them (`View run … at: <server>/#/experiments/<id>/runs/<run id>`)
 * and its UI shares them (#/models/<name>/versions/<n>): the view here that shows the same. */
function mlflowLink([first, id, sub, subId]) {
  if (first === "experiments" && sub === "runs" && subId) return ["runs", subId];
  if (first === "models") return id ? ["registry", id] : ["registry"];
  return null;
}

window.addEventListener("hashchange", render);
document.addEventListener("keydown", (e) => {
  // "/" jumps to the filter, as in many tables; Escape leaves it.
  const filter = document.querySelector("input.filter");
  if (e.key === "/" && filter && document.activeElement !== filter) { e.preventDefault(); filter.focus(); }
  else if (e.key === "Escape" && document.activeElement === filter) filter.blur();
});
render();
