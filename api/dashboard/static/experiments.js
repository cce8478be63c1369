// The experiments list, with run counts.
import { api } from "./api.js";
import { el, formatTime } from "./dom.js";
import { href } from "./router.js";

export async function experimentsView(main) {
  const experiments = await api.experiments();
  main.append(el("h1", { text: "Experiments" }));
  const rows = experiments.map((e) =>
    el("tr", { "data-experiment": e.experiment_id },
      el("td", {}, el("a", { href: href(["experiments", e.experiment_id]), text: e.name })),
      el("td", { class: "runs", text: String(e.run_count) }),
      el("td", { text: formatTime(e.creation_time) }),
      el("td", { class: "muted", text: Object.entries(e.tags).map(([k, v]) => `${k}=${v}`).join(", ") }),
    ),
  );
  main.append(
    el("table", { class: "plain experiments" },
      el("thead", {}, el("tr", {}, ...["Experiment", "Runs", "Created", "Tags"].map((t) => el("th", { text: t })))),
      el("tbody", {}, rows),
    ),
  );
  if (!experiments.length) main.append(el("p", { class: "muted", text: "No experiments yet." }));
}
