// The read API (/api/v1, and MLflow's registry reads), as the SDK's runstream.Client calls it.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error_code;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) search.append(k, String(item));
  }
  const s = search.toString();
  return s ? `?${s}` : "";
};
const seg = encodeURIComponent;

export const api = {
  experiments: () => request("GET", `/api/v1/experiments${q({ run_counts: true })}`).then((r) => r.experiments),
  experiment: (id) => request("GET", `/api/v1/experiments/${seg(id)}`),
  experimentKeys: (id) => request("GET", `/api/v1/experiments/${seg(id)}/keys`),
  searchRuns: (body) => request("POST", "/api/v1/runs/search", body),
  run: (id) => request("GET", `/api/v1/runs/${seg(id)}`),
  children: (id) => request("GET", `/api/v1/runs/${seg(id)}/children`).then((r) => r.run_ids),
  parents: (id) => request("GET", `/api/v1/runs/${seg(id)}/parents`).then((r) => r.run_ids),
  artifacts: (id) => request("GET", `/api/v1/runs/${seg(id)}/artifacts${q({ recursive: true })}`).then((r) => r.files),
  artifactUrl: (id, path) => `/api/v1/runs/${seg(id)}/artifacts/content/${path.split("/").map(seg).join("/")}`,
  series: (body) => request("POST", "/api/v1/series", body),
  summaries: (runIds) => request("POST", "/api/v1/runs/summary", { run_ids: runIds }).then((r) => r.summaries),
  aggregate: (body) => request("POST", "/api/v1/aggregate", body),
  readPosition: () => request("GET", "/api/v1/read-position").then((r) => r.token),
  models: () => request("GET", `/api/2.0/mlflow/registered-models/search${q({ max_results: 1000 })}`)
    .then((r) => r.registered_models || []),
  model: (name) => request("GET", `/api/2.0/mlflow/registered-models/get${q({ name })}`).then((r) => r.registered_model),
  versions: (name) => request("GET", `/api/2.0/mlflow/model-versions/search${q({ filter: `name = ${quote(name)}`, max_results: 10000 })}`)
    .then((r) => r.model_versions || []),
  modelHistory: (name) => request("GET", `/api/v1/registered-models/${seg(name)}/history`).then((r) => r.events),
  deployments: (name) => request("GET", `/api/v1/registered-models/${seg(name)}/deployments`).then((r) => r.deployments),
  monitoring: (name, params) => request("GET", `/api/v1/registered-models/${seg(name)}/monitoring${q(params)}`),
  gates: (name) => request("GET", `/api/v1/registered-models/${seg(name)}/gates`).then((r) => r.gates),
};

/** A string literal of MLflow's filter grammar. */
export function quote(value) {
  return value.includes("'") ? `"${value.replaceAll('"', '\\"')}"` : `'${value}'`;
}

/** Run names and experiments of run ids, by a search (one request for up to 1,000 runs). */
export async function runsByIds(experimentIds, runIds) {
  if (!runIds.length) return [];
  const filter = `attributes.run_id IN (${runIds.map(quote).join(", ")})`;
  const found = await api.searchRuns({ experiment_ids: experimentIds, filter, max_results: Math.max(1, runIds.length) });
  const byId = new Map(found.runs.map((r) => [r.run_id, r]));
  return runIds.map((id) => byId.get(id)).filter(Boolean);
}
