// A served model version in production: its windows (requests, latency) and each feature's drift from
// the reference over time, with the model's alert threshold (model tag runstream.drift.<statistic>).
import { api } from "./api.js";
import { Chart } from "./charts.js";
import { color, el, formatNumber, formatTime } from "./dom.js";
import { go, href } from "./router.js";

const STATISTICS = ["psi", "ks", "chi2"];

export async function monitoringView(main, name, params) {
  const [model, deployments] = await Promise.all([api.model(name), api.deployments(name)]);
  const version = params.get("version") || deployments[0]?.version;
  const environment = params.get("environment") || deployments[0]?.environment;
  const statistic = STATISTICS.includes(params.get("statistic")) ? params.get("statistic") : "psi";
  main.append(el("h1", {},
    el("a", { href: "#/registry", text: "Registered models" }), " / ",
    el("a", { href: href(["registry", name]), text: name }), " / ",
    el("span", { class: "monitored", text: version ? `v${version} in ${environment}` : "monitoring" })));
  if (!version || !environment) {
    main.append(el("p", { class: "muted", text: "No deployment reported: add ?version=…&environment=… to the address." }));
    return;
  }
  const select = el("select", { class: "statistic" }, STATISTICS.map((s) => el("option", { value: s, text: s, selected: s === statistic })));
  select.addEventListener("change", () => go(["monitoring", name], { version, environment, statistic: select.value }));
  main.append(el("p", {}, "Drift statistic ", select));

  const answer = await api.monitoring(name, { version, environment });
  const tags = Object.fromEntries((model.tags || []).map((t) => [t.key, t.value]));
  const threshold = tags[`runstream.drift.${statistic}`] !== undefined ? Number(tags[`runstream.drift.${statistic}`]) : null;
  const windows = answer.windows;
  const features = [...new Set(windows.flatMap((w) => Object.keys(w.drift)))]
    .filter((f) => windows.some((w) => w.drift[f]?.[statistic] !== undefined)).sort();
  if (!windows.length) {
    main.append(el("p", { class: "muted", text: "No production windows logged yet (runstream.Monitor)." }));
    return;
  }
  const lines = features.map((f, i) => ({ label: f, stroke: color(i) }));
  const columns = features.map((f) => windows.map((w) => w.drift[f]?.[statistic] ?? null));
  if (threshold !== null) {
    lines.push({ label: "threshold", stroke: "#57606a", dash: [6, 4] });
    columns.push(windows.map(() => threshold));
  }
  const charts = el("div", { class: "charts" });
  main.append(el("h2", { text: `${statistic} per feature, from ${answer.reference}` }), charts);
  new Chart(charts, { title: `${statistic} per feature`, xs: windows.map((w) => w.at / 1000), columns, lines, xAxis: "time" });

  const over = (v) => threshold !== null && v !== undefined && v > threshold;
  main.append(el("h2", { text: "Windows" }), el("table", { class: "plain windows" },
    el("thead", {}, el("tr", {}, ...["Window", "Requests", "Latency p50 / p95 (ms)", ...features].map((t) => el("th", { text: t })))),
    el("tbody", {}, [...windows].reverse().map((w) => el("tr", {},
      el("td", { text: formatTime(w.at) }),
      el("td", { text: String(w.requests) }),
      el("td", { text: w.latency_ms ? `${formatNumber(w.latency_ms.p50)} / ${formatNumber(w.latency_ms.p95)}` : "—" }),
      ...features.map((f) => {
        const v = w.drift[f]?.[statistic];
        return el("td", { class: over(v) ? "drift over" : "drift", "data-feature": f, text: v === undefined ? "—" : formatNumber(v) });
      }),
    )))));
}
