// sweep's dashboard: plain JavaScript over the server's JSON (/api/...). Views by URL
// hash: #/ (sweeps), #/sweep/NAME, #/job/ID, #/compare/A/B. Polls /api/changes and redraws
// the current view when the store changed.
"use strict";

const $view = document.getElementById("view");
const $crumbs = document.getElementById("crumbs");
const METRICS = ["mDice", "mAcc", "mIoU", "mFscore"];
const state = { token: null, sort: { key: "rank", asc: true }, filter: "", selected: new Set(), jobRows: 200, scatterKey: null };
const PAGE = 200; // job rows drawn at first; "show more" draws the next page

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
const secs = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`);
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");

async function get(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.text()).slice(0, 200)}`);
  return r.json();
}

// ---- sweeps ---------------------------------------------------------------------------
async function sweepsView() {
  $crumbs.textContent = "";
  const sweeps = await get("/api/sweeps");
  const rows = sweeps.map((s) => {
    const pct = s.jobs ? (100 * s.done) / s.jobs : 0;
    const c = s.counts;
    return `<tr data-sweep="${esc(s.name)}"><td><a href="#/sweep/${encodeURIComponent(s.name)}">${esc(s.name)}</a></td>
      <td>${esc(s.description || "")}</td><td class="num">${s.jobs}</td>
      <td><span class="bar"><i style="width:${pct.toFixed(0)}%"></i></span> ${s.done}/${s.jobs}</td>
      <td class="num">${c.running}</td><td class="num">${c.pending + c.interrupted}</td><td class="num">${c.failed}</td>
      <td>${when(s.created_at)}</td><td>${when(s.updated_at)}</td></tr>`;
  });
  $view.innerHTML = `<h2>Sweeps</h2><table id="sweeps"><thead><tr><th>sweep</th><th>description</th><th>jobs</th><th>progress</th>
    <th>running</th><th>queued</th><th>failed</th><th>created</th><th>updated</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

// ---- one sweep: leaderboard, live jobs, curves ----------------------------------------
function boardValue(row, key) {
  if (key === "rank") return row.rank;
  if (key === "model") return row.model;
  if (key === "n") return row.n;
  if (key === "pbest") return row.stats ? row.stats.prob_best : null;
  const m = row.metrics && row.metrics[key];
  return m ? m.mean : null;
}

function sortRows(rows) {
  const { key, asc } = state.sort;
  const dir = asc ? 1 : -1;
  return rows.slice().sort((a, b) => {
    const x = boardValue(a, key), y = boardValue(b, key);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
}

function boardTable(rows) {
  const q = state.filter.toLowerCase();
  const shown = sortRows(rows).filter((r) => !q || (r.model + " " + JSON.stringify(r.config)).toLowerCase().includes(q));
  const head = [["rank", "#"], ["model", "Model"], ["n", "n"], ...METRICS.map((m) => [m, m]), ["pbest", "P(best)"]]
    .map(([k, label]) => `<th data-key="${k}">${label}${state.sort.key === k ? (state.sort.asc ? " ▲" : " ▼") : ""}</th>`)
    .join("");
  const body = shown.map((r) => {
    const cells = METRICS.map((m) => {
      const v = r.metrics && r.metrics[m];
      const ci = v && v.ci95 ? ` ± ${fmt((v.ci95[1] - v.ci95[0]) / 2)}` : "";
      return `<td class="num">${v ? fmt(v.mean) + ci : "–"}</td>`;
    }).join("");
    const best = r.stats && r.stats.indistinguishable ? " ≈ best" : "";
    const job = r.job_ids && r.job_ids[0];
    const checked = state.selected.has(r.model) ? "checked" : "";
    return `<tr data-model="${esc(r.model)}" class="${r.stats && r.stats.best ? "best" : ""}">
      <td class="num"><input type="checkbox" data-select="${esc(r.model)}" ${checked}> ${r.rank ?? ""}</td>
      <td><a href="#/job/${job}">${esc(r.model)}</a><span class="muted">${r.external ? " (external)" : ""}${best}</span></td><td class="num">${r.n}</td>${cells}
      <td class="num">${r.stats && r.stats.prob_best != null ? (100 * r.stats.prob_best).toFixed(0) + "%" : "–"}</td></tr>`;
  }).join("");
  return `<table id="leaderboard"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function jobsTable(jobs) {
  const more = jobs.length > state.jobRows ? `<button id="more">show ${Math.min(PAGE, jobs.length - state.jobRows)} more of ${jobs.length - state.jobRows}</button>` : "";
  const body = jobs.slice(0, state.jobRows).map((j) => `<tr data-job="${j.id}" data-status="${j.status}"><td><a href="#/job/${j.id}">${j.id}</a></td><td>${esc(j.label)}</td>
    <td class="num">${j.seed}</td><td class="status-${j.status}">${j.status}</td><td class="num">${j.iteration}/${j.total_iters ?? "?"}</td>
    <td class="num">${secs(j.eta_s)}</td><td>${esc(j.node || "")}${j.slurm_job ? " (" + esc(j.slurm_job) + ")" : ""}</td>
    <td class="num">${fmt(j.mDice)}</td><td class="muted">${esc(j.reason || "")}</td></tr>`).join("");
  return `<table id="jobs"><thead><tr><th>job</th><th>Model</th><th>seed</th><th>status</th><th>iteration</th><th>ETA</th><th>node</th><th>mDice</th><th>reason</th></tr></thead><tbody>${body}</tbody></table>${more}`;
}

// Every numeric value of a config, by dotted key ("optimizer.lr").
function numericKeys(config, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(config || {})) {
    const key = prefix + k;
    if (typeof v === "number") out[key] = v;
    else if (v && typeof v === "object" && !Array.isArray(v)) numericKeys(v, key + ".", out);
  }
  return out;
}

// mDice of every finished run against one swept key: which settings matter. The keys come
// from /api/sweeps/NAME/swept (most varied among the configurations first); only the rows
// of the stage they were read from are drawn (a pretraining stage's mDice is on another
// data set).
function drawScatter(board, swept) {
  const el = document.getElementById("scatter");
  const rows = board.filter((r) => (r.stage ?? null) === (swept.stage ?? null));
  const runs = rows.flatMap((r) => (r.runs || []).map((run) => ({ keys: numericKeys(run.config), value: run.metrics && run.metrics.val ? run.metrics.val.mDice : null })));
  const keys = swept.keys.map((k) => k.key);
  if (!keys.length) { el.innerHTML = '<span class="muted">no numeric key varies among the configurations</span>'; return; }
  const key = keys.includes(state.scatterKey) ? state.scatterKey : keys[0];
  const pts = runs.filter((r) => r.value != null && r.keys[key] != null).sort((a, b) => a.keys[key] - b.keys[key]);
  el.innerHTML = `<label>mDice against <select id="scatter-key">${keys.map((k) => `<option ${k === key ? "selected" : ""}>${esc(k)}</option>`).join("")}</select></label><div id="scatter-plot"></div>`;
  document.getElementById("scatter-key").addEventListener("change", (e) => { state.scatterKey = e.target.value; drawScatter(board, swept); });
  new uPlot({ width: 520, height: 240, scales: { x: { time: false } }, series: [{ label: key }, { label: "mDice", stroke: "#457b9d", paths: () => null, points: { show: true, size: 7 } }] },
    [pts.map((p) => p.keys[key]), pts.map((p) => p.value)], document.getElementById("scatter-plot"));
}

async function sweepView(name) {
  $crumbs.innerHTML = `/ <a href="#/sweep/${encodeURIComponent(name)}">${esc(name)}</a>`;
  const base = `/api/sweeps/${encodeURIComponent(name)}`;
  const [board, jobs, swept, search] = await Promise.all([get(`${base}/leaderboard`), get(`${base}/jobs`), get(`${base}/swept`), get(`${base}/search`)]);
  const draw = () => {
    document.getElementById("board").innerHTML = boardTable(board);
  };
  $view.innerHTML = `<h2>${esc(name)}</h2>
    <input type="search" id="filter" placeholder="filter by model or any config value" value="${esc(state.filter)}">
    <div id="board"></div><p class="muted">mean ± half the 95% interval over seeds; ≈ best: not distinguishable from the best row (paired bootstrap, Holm); tick rows to plot their curves</p>
    <p><button id="compare" disabled>compare the two ticked rows</button></p>
    ${searchBox(search.search)}
    <div class="grid"><div><h3>Curves</h3><div id="curves" class="muted">tick rows of the leaderboard</div></div>
    <div><h3>Metric against a swept key</h3><div id="scatter"></div></div></div>
    <h3>Jobs</h3><div id="jobs-box">${jobsTable(jobs)}</div>`;
  draw();
  document.getElementById("filter").addEventListener("input", (e) => { state.filter = e.target.value; draw(); });
  document.getElementById("board").addEventListener("click", (e) => {
    const th = e.target.closest("th[data-key]");
    if (th) {
      const key = th.dataset.key;
      state.sort = { key, asc: state.sort.key === key ? !state.sort.asc : key === "rank" || key === "model" };
      draw();
    }
    const box = e.target.closest("input[data-select]");
    if (box) {
      box.checked ? state.selected.add(box.dataset.select) : state.selected.delete(box.dataset.select);
      drawCurves(board);
      syncCompare(board);
    }
  });
  document.getElementById("jobs-box").addEventListener("click", (e) => {
    if (e.target.id !== "more") return;
    state.jobRows += PAGE;
    document.getElementById("jobs-box").innerHTML = jobsTable(jobs);
  });
  document.getElementById("compare").addEventListener("click", () => {
    const ids = board.filter((r) => state.selected.has(r.model)).map((r) => r.job_ids[0]);
    location.hash = `#/compare/${ids[0]}/${ids[1]}`;
  });
  drawCurves(board);
  drawScatter(board, swept);
  syncCompare(board);
}

// An adaptive search: where it stands, how well early rungs rank trials, and the trials it
// stopped with the rung they reached, their value there and the rule's evidence.
function searchBox(s) {
  if (!s) return "";
  const rows = s.stopped.map((t) => `<tr data-trial="${t.trial}"><td class="num">${t.trial}</td>
    <td class="num">${t.iteration ?? "–"}</td><td class="num">${fmt(t.value)}</td><td>${esc(t.evidence)}</td><td class="muted">${esc(t.params)}</td></tr>`).join("");
  const stopped = s.stopped.length
    ? `<table id="stopped"><thead><tr><th>trial</th><th>stopped at iteration</th><th>${esc(s.metric)}</th><th>evidence</th><th>point</th></tr></thead><tbody>${rows}</tbody></table>`
    : '<p class="muted">no trial stopped early</p>';
  const rho = s.correlations.map((c) => `<li>${esc(c)}</li>`).join("");
  return `<h3>Search</h3><pre id="search-summary">${esc(s.summary)}</pre>${rho ? `<ul id="rung-correlations">${rho}</ul>` : ""}${stopped}`;
}

function syncCompare(board) {
  const n = board.filter((r) => state.selected.has(r.model)).length;
  document.getElementById("compare").disabled = n !== 2;
}

// Seeds of one row as a band: mean loss with min and max at each iteration.
async function drawCurves(board) {
  const el = document.getElementById("curves");
  const rows = board.filter((r) => state.selected.has(r.model));
  if (!rows.length) { el.textContent = "tick rows of the leaderboard"; return; }
  const curves = await Promise.all(rows.map((r) => Promise.all(r.job_ids.map((id) => get(`/api/jobs/${id}/curve`)))));
  const xs = [...new Set(curves.flat().flatMap((c) => c.iteration))].sort((a, b) => a - b);
  const data = [xs], series = [{}], bands = [];
  const colours = ["#e63946", "#457b9d", "#2a9d8f", "#f4a261", "#6d597a", "#1d3557"];
  rows.forEach((r, i) => {
    const at = xs.map((x) => curves[i].map((c) => c.loss[c.iteration.indexOf(x)]).filter((v) => v != null));
    const mean = at.map((v) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null));
    const colour = colours[i % colours.length];
    data.push(at.map((v) => (v.length ? Math.max(...v) : null)), mean, at.map((v) => (v.length ? Math.min(...v) : null)));
    const k = data.length - 3;
    series.push({ label: r.model + " max", stroke: colour + "40", width: 1 }, { label: r.model, stroke: colour, width: 2 }, { label: r.model + " min", stroke: colour + "40", width: 1 });
    bands.push({ series: [k, k + 2], fill: colour + "20" });
  });
  el.innerHTML = "";
  new uPlot({ width: Math.min(900, window.innerWidth - 40), height: 300, series, bands, scales: { x: { time: false } }, axes: [{ label: "iteration" }, { label: "loss" }] }, data, el);
}

// ---- one job --------------------------------------------------------------------------
async function jobView(id) {
  const [job, curve] = await Promise.all([get(`/api/jobs/${id}`), get(`/api/jobs/${id}/curve`)]);
  $crumbs.innerHTML = `/ <a href="#/sweep/${encodeURIComponent(job.sweep)}">${esc(job.sweep)}</a> / job ${job.id}`;
  const attempts = job.attempts.map((a) => `<tr><td class="num">${a.attempt}</td><td class="status-${a.ended_as}">${a.ended_as}</td><td>${esc(a.owner || "")}</td><td>${when(a.ended_at)}</td><td>${esc(a.reason || "")}</td></tr>`).join("");
  const className = (c) => c == null ? "" : esc(job.classes && job.classes[c] != null ? `${job.classes[c]} (${c})` : String(c));
  const metrics = job.metrics.filter((m) => m.split === "val").map((m) => `<tr><td>${esc(m.name)}</td><td>${className(m.class)}</td><td class="num">${fmt(m.value)}</td></tr>`).join("");
  const images = job.images.map((m) => `<tr><td>${esc(m.image)}</td><td>${className(m.class)}</td><td class="num">${fmt(m.dice)}</td><td class="num">${fmt(m.hd95)}</td><td>${esc(m.presence || "")}</td></tr>`).join("");
  // Image, ground truth, prediction and overlay of each saved prediction (the first four
  // open at once; the data set must be where the job read it for the first two and the last).
  const views = ["image", "truth", "prediction", "overlay"];
  const preds = job.predictions.map((n, i) => `<div><span class="muted">${esc(n)}</span><br>${views.map((v) =>
    `<img src="/api/jobs/${job.id}/predictions/${i}?view=${v}" alt="${v}" title="${v}" ${v === "prediction" ? `data-prediction="${i}"` : ""} onerror="this.style.display='none'">`).join("")}</div>`).join("");
  const arts = job.artifacts.map((a) => `<li><a href="/api/jobs/${job.id}/artifacts/${a.id}">${esc(a.name)}</a> <span class="muted">${a.kind}${a.iteration != null ? " @" + a.iteration : ""}</span></li>`).join("");
  $view.innerHTML = `<h2>${esc(job.label)} <span class="status-${job.status}">${job.status}</span></h2>
    <p class="muted">job ${job.id} · hash ${esc(job.hash)} · ${job.external ? `external: predictions from ${esc(job.external.predictions)} (${job.external.cases} cases), scored by sweep evaluate` : `seed ${job.seed} · iteration ${job.iteration}/${job.total_iters ?? "?"}`} ${job.error ? "· " + esc(job.error) : ""}</p>
    <div class="grid"><div><h3>Curve</h3><div id="curve"></div></div>
    <div><h3>Metrics (validation)</h3><table id="metrics"><thead><tr><th>metric</th><th>class</th><th>value</th></tr></thead><tbody>${metrics}</tbody></table></div></div>
    <h3>Attempts</h3><table id="attempts"><thead><tr><th>#</th><th>ended as</th><th>owner</th><th>ended</th><th>reason</th></tr></thead><tbody>${attempts}</tbody></table>
    <h3>Predictions</h3><div class="preds" id="predictions">${preds || '<span class="muted">none saved (eval.save_predictions)</span>'}</div>
    <h3>Per-image results</h3><table id="images"><thead><tr><th>image</th><th>class</th><th>Dice</th><th>HD95</th><th>presence</th></tr></thead><tbody>${images}</tbody></table>
    <h3>Config</h3><pre>${esc(job.config_yaml)}</pre>
    <h3>Files</h3><ul>${arts}</ul>
    <h3>Log (tail)</h3><pre>${esc(job.log_tail || "")}</pre>`;
  if (curve.iteration.length) {
    new uPlot({ width: 520, height: 240, series: [{}, { label: "loss", stroke: "#e63946" }], scales: { x: { time: false } } }, [curve.iteration, curve.loss], document.getElementById("curve"));
  }
}

// ---- compare two jobs -----------------------------------------------------------------
async function compareView(a, b) {
  const [ja, jb] = await Promise.all([get(`/api/jobs/${a}`), get(`/api/jobs/${b}`)]);
  $crumbs.textContent = `/ compare ${a} and ${b}`;
  const key = (m) => `${m.name}${m.class != null ? "." + m.class : ""}`;
  const vb = new Map(jb.metrics.filter((m) => m.split === "val").map((m) => [key(m), m.value]));
  const rows = ja.metrics.filter((m) => m.split === "val").map((m) => {
    const other = vb.get(key(m));
    return `<tr><td>${esc(key(m))}</td><td class="num">${fmt(m.value)}</td><td class="num">${fmt(other)}</td><td class="num">${fmt(other != null && m.value != null ? m.value - other : null)}</td></tr>`;
  }).join("");
  $view.innerHTML = `<h2>Compare</h2><table id="compare"><thead><tr><th>metric</th><th><a href="#/job/${a}">${esc(ja.label)}</a></th><th><a href="#/job/${b}">${esc(jb.label)}</a></th><th>difference</th></tr></thead><tbody>${rows}</tbody></table>`;
}

// ---- routing and live updates ---------------------------------------------------------
async function render() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "sweep" && parts[1]) await sweepView(parts[1]);
    else if (parts[0] === "job" && parts[1]) await jobView(Number(parts[1]));
    else if (parts[0] === "compare" && parts[2]) await compareView(Number(parts[1]), Number(parts[2]));
    else await sweepsView();
    document.body.dataset.rendered = String(Date.now());
  } catch (e) {
    $view.innerHTML = `<p class="status-failed">${esc(e.message)}</p>`;
  }
}

async function poll() {
  try {
    const { token } = await get("/api/changes");
    if (state.token !== null && token !== state.token && !document.activeElement.matches("input[type=search]")) await render();
    state.token = token;
    document.getElementById("live").style.opacity = "1";
  } catch (e) {
    document.getElementById("live").style.opacity = "0.3";
  }
  setTimeout(poll, 1500);
}

window.addEventListener("hashchange", render);
render().then(poll);
