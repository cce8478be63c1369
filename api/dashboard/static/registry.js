// The model registry: registered models with their versions, aliases and stages, their promotion
// gates, and a timeline of which version held each alias, served in each environment (⇒, as deploy
// tools report it) and each version's stage, when, who moved it, and each gate's decisions
// (✓ allowed, ✕ refused) on the lane it decided.
import { api } from "./api.js";
import { color, el, formatTime } from "./dom.js";
import { href } from "./router.js";

export async function registryView(main) {
  const models = await api.models();
  main.append(el("h1", { text: "Registered models" }));
  if (!models.length) { main.append(el("p", { class: "muted", text: "No registered models." })); return; }
  main.append(el("table", { class: "plain models" },
    el("thead", {}, el("tr", {}, ...["Model", "Latest versions", "Aliases", "Updated"].map((t) => el("th", { text: t })))),
    el("tbody", {}, models.map((m) => el("tr", {},
      el("td", {}, el("a", { href: href(["registry", m.name]), text: m.name })),
      el("td", { text: (m.latest_versions || []).map((v) => `v${v.version} (${v.current_stage})`).join(", ") }),
      el("td", { text: (m.aliases || []).map((a) => `@${a.alias} → v${a.version}`).join(", ") }),
      el("td", { text: formatTime(m.last_updated_timestamp) }),
    )))));
}

/** Spans of time from a history: per lane (an alias, or a version's stage) what it held from when to when. */
export function lanes(events, now) {
  const spans = new Map();
  const open = (lane, value, time, user) => {
    const list = spans.get(lane) || [];
    const last = list[list.length - 1];
    if (last && last.end === null) last.end = time;
    if (value !== null) list.push({ value, start: time, end: null, user });
    spans.set(lane, list);
  };
  for (const e of events) {
    if (e.event === "alias_set") open(`@${e.alias}`, `v${e.version}`, e.time, e.user);
    else if (e.event === "alias_deleted") open(`@${e.alias}`, null, e.time, e.user);
    else if (e.event === "version_created") open(`v${e.version} stage`, "None", e.time, e.user);
    else if (e.event === "stage_transitioned") open(`v${e.version} stage`, e.stage, e.time, e.user);
    else if (e.event === "version_deleted") open(`v${e.version} stage`, null, e.time, e.user);
    else if (e.event === "deployed") open(`⇒ ${e.environment}`, `v${e.version}`, e.time, e.user);
    else if (e.event === "undeployed") open(`⇒ ${e.environment}`, null, e.time, e.user);
  }
  for (const list of spans.values()) for (const s of list) if (s.end === null) s.end = now;
  return spans;
}

export async function modelView(main, name) {
  const [model, versions, events, gates, deployments] = await Promise.all(
    [api.model(name), api.versions(name), api.modelHistory(name), api.gates(name), api.deployments(name)]);
  main.append(el("h1", {}, el("a", { href: "#/registry", text: "Registered models" }), " / ", el("span", { class: "model-name", text: model.name })));
  if (model.description) main.append(el("p", { text: model.description }));
  main.append(el("h2", { text: "Versions" }), el("table", { class: "plain versions" },
    el("thead", {}, el("tr", {}, ...["Version", "Stage", "Aliases", "Run", "Created", "Source"].map((t) => el("th", { text: t })))),
    el("tbody", {}, versions.sort((a, b) => Number(b.version) - Number(a.version)).map((v) => el("tr", {},
      el("td", { text: `v${v.version}` }),
      el("td", { text: v.current_stage }),
      el("td", { text: (v.aliases || []).map((a) => `@${a}`).join(" ") }),
      el("td", {}, v.run_id ? el("a", { href: href(["runs", v.run_id]), text: v.run_id.slice(0, 12) }) : ""),
      el("td", { text: formatTime(v.creation_timestamp) }),
      el("td", { class: "muted", text: v.source || "" }),
    )))));

  if (deployments.length) {
    main.append(el("h2", { text: "Deployments" }), el("table", { class: "plain deployments" },
      el("thead", {}, el("tr", {}, ...["Environment", "Version", "Since", "Note", "Production"].map((t) => el("th", { text: t })))),
      el("tbody", {}, deployments.map((d) => el("tr", {},
        el("td", { text: d.environment }),
        el("td", { text: `v${d.version}` }),
        el("td", { text: formatTime(d.since) }),
        el("td", { class: "muted", text: d.note }),
        el("td", {}, el("a", { href: href(["monitoring", name], { version: d.version, environment: d.environment }), text: "monitoring" })),
      )))));
  }
  if (gates.length) {
    main.append(el("h2", { text: "Promotion gates" }), el("table", { class: "plain gates" },
      el("thead", {}, el("tr", {}, ...["Alias or stage", "Condition", "Approvers"].map((t) => el("th", { text: t })))),
      el("tbody", {}, gates.map((g) => el("tr", {},
        el("td", { text: g.target }),
        el("td", { class: "mono", text: g.condition }),
        el("td", { text: g.approvers.join(", ") || "anyone" }),
      )))));
  }

  const now = Date.now();
  const spans = lanes(events, now);
  const decisions = events.filter((e) => e.event.startsWith("gate_"));
  for (const d of decisions) if (!spans.has(gateLane(d))) spans.set(gateLane(d), []);
  const start = events.length ? events[0].time : now;
  const range = Math.max(1, now - start);
  const pos = (t) => `${(100 * (t - start)) / range}%`;
  const values = [...new Set([...spans.values()].flat().map((s) => s.value))];
  const timeline = el("div", { class: "timeline" });
  const rank = (lane) => (lane[0] === "@" ? 0 : lane[0] === "⇒" ? 1 : 2);  // aliases, deployments, stages
  for (const [lane, list] of [...spans.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))) {
    const track = el("div", { class: "track" });
    for (const s of list) {
      track.append(el("div", {
        class: "bar",
        style: `left: ${pos(s.start)}; width: calc(${pos(s.end)} - ${pos(s.start)}); background: ${color(values.indexOf(s.value))}`,
        // no user with auth off (MLflow's empty user_id): nobody to name
        title: `${lane}: ${s.value} from ${formatTime(s.start)} to ${s.end === now ? "now" : formatTime(s.end)}${s.user ? ` (set by ${s.user})` : ""}`,
        text: s.user ? `${s.value} · ${s.user}` : s.value,
      }));
    }
    for (const d of decisions.filter((d) => gateLane(d) === lane)) {
      const allowed = d.event === "gate_allowed";
      track.append(el("span", {
        class: `gate ${allowed ? "allowed" : "refused"}`,
        style: `left: ${pos(d.time)}`,
        title: `${formatTime(d.time)}: ${describe(d)}${d.user ? ` (asked by ${d.user})` : ""}`,
        text: allowed ? "✓" : "✕",
      }));
    }
    timeline.append(el("div", { class: "lane", "data-lane": lane }, el("span", { class: "label", text: lane }), track));
  }
  timeline.append(el("div", { class: "axis" }, el("span", { text: formatTime(start) }), el("span", { text: "now" })));
  main.append(el("h2", { text: "Timeline" }), timeline);

  main.append(el("h2", { text: "History" }), el("table", { class: "plain history" },
    el("thead", {}, el("tr", {}, ...["Time", "Change", "Detail", "By"].map((t) => el("th", { text: t })))),
    el("tbody", {}, [...events].reverse().map((e) => el("tr", {},
      el("td", { text: formatTime(e.time) }),
      el("td", { text: e.event.replaceAll("_", " ") }),
      el("td", { text: describe(e) }),
      el("td", { text: e.user || "—" }),
    )))));
}

/** The lane a gate decision is drawn on: the alias's, or the candidate version's stage lane. */
function gateLane(d) {
  return d.kind === "alias" ? `@${d.target}` : `v${d.version} stage`;
}

function describe(e) {
  if (e.event.startsWith("gate_")) {
    const move = e.kind === "alias" ? `@${e.target} → v${e.version}` : `v${e.version} → ${e.target}`;
    const checks = e.checks.map((c) => `${c.passed ? "✓" : "✕"} ${c.condition} (${c.actual ?? "none"}${c.expected === null ? "" : ` vs ${c.expected}`})`);
    return `${move}${e.current_version ? ` (held by v${e.current_version})` : ""}: ${checks.join("; ")}`;
  }
  if (e.event === "alias_set") return `@${e.alias} → v${e.version}${e.previous_version ? ` (was v${e.previous_version})` : ""}`;
  if (e.event === "alias_deleted") return `@${e.alias} removed${e.previous_version ? ` (was v${e.previous_version})` : ""}`;
  if (e.event === "stage_transitioned") return `v${e.version}: ${e.previous_stage} → ${e.stage}`;
  const was = e.previous_version ? ` (was v${e.previous_version})` : "";
  if (e.event === "deployed") return `v${e.version} serves in ${e.environment}${was}${e.note ? ` · ${e.note}` : ""}`;
  if (e.event === "undeployed") return `nothing serves in ${e.environment}${was}${e.note ? ` · ${e.note}` : ""}`;
  if (e.event.startsWith("version_")) return `v${e.version}`;
  return e.name || "";
}
