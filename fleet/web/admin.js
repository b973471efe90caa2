// The Queues and Jobs pages: the admin API (/api/admin) as tables and
// buttons. Every action asks for a confirmation first. Tokens come from the
// URL fragment, which never leaves the browser: #token=<read token>
// &admin=<ADMIN_TOKEN>; the views need the read (or the admin) token, the
// actions the admin token; on a bot without tokens (loopback) neither.
// Everything from the API is written as text, never as markup.

const api = "../api/admin";
const frag = Object.fromEntries(location.hash.slice(1).split("&").filter(Boolean).map((kv) => {
  const i = kv.indexOf("=");
  return i < 0 ? [kv, ""] : [kv.slice(0, i), decodeOr(kv.slice(i + 1))];
}));

// decodeOr percent-decodes s, or returns it as it is when it is not valid
// percent-encoding (a token with a bare "%"), as the dashboard does, so a
// malformed fragment never leaves the page blank.
function decodeOr(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
const $ = (id) => document.getElementById(id);

async function call(method, path) {
  const headers = {};
  const token = method === "GET" ? frag.token || frag.admin : frag.admin;
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch(api + path, { method, headers, cache: "no-store" });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `${method} ${path}: ${resp.status}`);
  return body;
}

function notice(msg) {
  const n = $("notice");
  n.textContent = msg || "";
  n.hidden = !msg;
}

// confirmThen shows the confirmation and runs act on Yes.
function confirmThen(text, act) {
  const box = $("confirm");
  $("confirm-text").textContent = text;
  box.hidden = false;
  const done = () => { box.hidden = true; $("confirm-yes").onclick = $("confirm-no").onclick = null; };
  $("confirm-no").onclick = done;
  $("confirm-yes").onclick = async () => {
    done();
    try {
      await act();
      notice("");
    } catch (e) {
      notice(String(e.message || e));
    }
    refresh();
  };
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function button(label, onclick, attrs = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.onclick = onclick;
  for (const [k, v] of Object.entries(attrs)) b.dataset[k] = v;
  return b;
}

const fmtTime = (s) => (s ? new Date(s).toLocaleTimeString() : "–");

// ---- Queues ------------------------------------------------------------------

async function refreshQueues() {
  const { queues } = await call("GET", "/queues");
  const body = $("queues");
  body.replaceChildren();
  for (const q of queues) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.name;
    tr.dataset.paused = q.paused ? "1" : "0";
    cell(tr, q.name);
    cell(tr, q.paused ? "paused" : "running").className = "state";
    cell(tr, q.waiting).className = "waiting";
    cell(tr, q.in_flight);
    cell(tr, q.retrying);
    cell(tr, q.dead_letters);
    cell(tr, q.latency_seconds.toFixed(1) + " s");
    cell(tr, q.rate_per_second.toFixed(2));
    const act = q.paused ? "resume" : "pause";
    const td = document.createElement("td");
    td.append(button(q.paused ? "Resume" : "Pause", () =>
      confirmThen(`${act === "pause" ? "Pause" : "Resume"} queue ${q.name}?`, () => call("POST", `/queues/${encodeURIComponent(q.name)}/${act}`)),
    { action: act }));
    tr.append(td);
    body.append(tr);
  }
}

function setupWorkers() {
  for (const b of document.querySelectorAll("[data-worker-action]")) {
    b.onclick = () => {
      const id = $("worker-id").value.trim();
      const act = b.dataset.workerAction;
      if (!id) return notice("Enter a worker id.");
      confirmThen(`${act} worker ${id}?`, () => call("POST", `/workers/${encodeURIComponent(id)}/${act}`));
    };
  }
}

// ---- Jobs --------------------------------------------------------------------

let cursor = "";

function filters() {
  const p = new URLSearchParams();
  for (const [k, id] of [["queue", "f-queue"], ["status", "f-status"], ["type", "f-type"], ["since", "f-since"]]) {
    const v = $(id).value.trim();
    if (v) p.set(k, v);
  }
  return p;
}

async function refreshJobs(append = false) {
  const p = filters();
  if (append && cursor) p.set("cursor", cursor);
  const page = await call("GET", "/jobs?" + p);
  const body = $("jobs");
  if (!append) body.replaceChildren();
  for (const j of page.jobs) {
    const tr = document.createElement("tr");
    tr.dataset.job = j.id;
    tr.dataset.status = j.status;
    const idCell = cell(tr, "");
    const a = document.createElement("a");
    a.href = "#";
    a.textContent = j.id;
    a.onclick = (e) => { e.preventDefault(); showJob(j.id); };
    idCell.append(a);
    cell(tr, j.type);
    cell(tr, j.status).className = "status";
    cell(tr, `${j.attempts}/${j.max_attempts}`);
    cell(tr, j.worker || "–");
    cell(tr, fmtTime(j.updated_at));
    cell(tr, j.error || "", "err");
    const td = document.createElement("td");
    if (j.status === "failed") {
      td.append(
        button("Retry", () => confirmThen(`Retry job ${j.id}?`, () => call("POST", `/jobs/${encodeURIComponent(j.id)}/retry`)), { action: "retry" }),
        " ",
        button("Delete", () => confirmThen(`Delete job ${j.id} for good?`, () => call("DELETE", `/jobs/${encodeURIComponent(j.id)}`)), { action: "delete" }),
      );
    }
    tr.append(td);
    body.append(tr);
  }
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
}

async function showJob(id) {
  const d = await call("GET", "/jobs/" + encodeURIComponent(id));
  $("detail").hidden = false;
  $("d-title").textContent = `${d.id} (${d.status})`;
  const dl = $("d-fields");
  dl.replaceChildren();
  for (const [k, v] of [["Type", d.type], ["Queue", d.queue], ["Attempts", `${d.attempts}/${d.max_attempts}`],
    ["Worker", d.worker || "–"], ["Created", fmtTime(d.created_at)], ["Updated", fmtTime(d.updated_at)], ["Error", d.error || "–"]]) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  $("d-payload").textContent = d.payload === undefined ? "(none kept)" : JSON.stringify(d.payload, null, 2);
  const ol = $("d-history");
  ol.replaceChildren();
  for (const a of d.attempt_history) {
    const li = document.createElement("li");
    li.textContent = a.outcome === "retried"
      ? `retried by an operator at ${fmtTime(a.finished_at)}`
      : `attempt ${a.attempt} on ${a.worker || "–"}: ${a.outcome} at ${fmtTime(a.finished_at)}${a.error ? " — " + a.error : ""}`;
    ol.append(li);
  }
  const logs = $("d-logs");
  logs.hidden = !d.logs_url;
  if (d.logs_url) logs.href = d.logs_url;
}

function setupJobs() {
  $("filters").onsubmit = (e) => { e.preventDefault(); refreshJobs(); };
  $("more").onclick = () => refreshJobs(true);
  const bulk = (act, label) => () => {
    const p = filters();
    p.delete("status");
    const what = [p.get("type") && `of type ${p.get("type")}`, p.get("since") && `since ${p.get("since")}`].filter(Boolean).join(" ");
    confirmThen(`${label} every dead job ${what || "of the queue"}?`, () => call("POST", `/dead/${act}?` + p));
  };
  $("retry-all").onclick = bulk("retry", "Retry");
  $("purge").onclick = bulk("purge", "Delete");
}

// ---- Both --------------------------------------------------------------------

const page = document.body.dataset.page;

async function refresh() {
  try {
    if (page === "queues") await refreshQueues();
    else await refreshJobs();
    document.body.dataset.loaded = "1";
  } catch (e) {
    notice(String(e.message || e));
  }
}

if (page === "queues") setupWorkers();
else setupJobs();
refresh();
setInterval(() => { if ($("confirm").hidden) refresh(); }, 2000);
