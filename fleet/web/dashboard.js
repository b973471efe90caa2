// botfleet fleet dashboard: plain DOM, no framework, no build step.
//
// Data: GET api/fleet?limit=&state=&prefix=&cursor= (a page of the fleet,
// with the whole fleet's summary), api/fleet/history?worker=<id>&n=<n> (a
// worker's recent beats, oldest first) and the Server-Sent Events of
// api/fleet/events with the same parameters (event "fleet", the page, every
// 2 s). The URLs are relative so the page also works behind a proxy that
// serves the bot under a path.
//
// Authentication: when the bot runs with METRICS_AUTH_TOKEN the API wants
// "Authorization: Bearer <token>", while this page is served to anyone (it
// holds no data). Open it as .../#token=<token>: a URL fragment never leaves
// the browser, and the script sends the token in that header. EventSource
// cannot send headers, so with a token the page polls api/fleet with fetch
// instead of listening to the event stream.
//
// Safety: worker ids, hosts and errors come from whatever wrote to Redis, so
// they only ever reach the page as textContent or attribute values, never as
// markup, and the workers are kept in a Map (an id such as "__proto__" is
// just a key).
//
// Scale: the page shows at most PAGE_SIZE cards, a page the server chose
// (by state, by id prefix, then by id after a cursor), and the whole fleet's
// counts from the summary, so a fleet of 100,000 costs what a thousand do.
// Each worker's card is built once and then updated in place, a field only
// when its text changed, and only while the card is on screen (or near it):
// with a thousand workers an update costs what the visible cards cost.
// Sparklines keep at most MAX_POINTS points; a worker's history is fetched
// when its card first comes into view.

const API = "api/fleet";
const EVENTS = "api/fleet/events";
const HISTORY = "api/fleet/history";

const POLL_MS = 2000; // the event stream's period
const POLL_MAX_MS = 10000; // polling backs off to this while the API fails
const SILENCE_MS = 10000; // an open event stream this quiet counts as failed
const SSE_MAX_ERRORS = 3; // errors in a row before polling instead
const MAX_POINTS = 60; // sparkline points per worker
const RATE_WINDOW_S = 60; // throughput is measured over this much of each worker's beats
const GONE_MS = 30000; // a worker that left stays on the page, dimmed, this long
const HISTORY_PARALLEL = 4; // history requests in flight at once
const PAGE_SIZE = 1000; // cards on the page at most: the API's largest page
const FIRST_SIZE = 100; // the first answer's cards: a screenful painted at once, the stream brings the rest
const PREFIX_WAIT_MS = 300; // typing in the prefix box settles this long before a new page

const STATES = ["STARTING", "IDLE", "BUSY", "STOPPING", "STOPPED"];
const HEALTHS = ["alive", "stale", "invalid"];

const $ = (id) => document.getElementById(id);
const nf = new Intl.NumberFormat();
const byID = new Intl.Collator(undefined, { numeric: true }).compare;

const token = readToken();
const workers = new Map(); // worker_id -> record (see newRecord)
const page = {
  snap: null, // the latest fleet document
  received: 0, // Date.now() when it arrived
  filter: "",
  reorder: false, // a worker joined or left since the cards were placed
  renderQueued: false,
  firstRender: true,
};
// query is the page of the fleet shown. gen numbers the queries, so that an
// answer to an older one is dropped.
const query = { state: "", prefix: "", cursor: "", back: [], gen: 0 };
const transport = { stop: null, poll: null }; // the current stream's stop, or polling's "now"

// params returns the API's parameters for the current query, with a page of
// limit workers.
function params(limit = PAGE_SIZE) {
  const p = new URLSearchParams({ limit: String(limit) });
  if (query.state) p.set("state", query.state);
  if (query.prefix) p.set("prefix", query.prefix);
  if (query.cursor) p.set("cursor", query.cursor);
  return p.toString();
}
let seq = 0; // numbers the cards' element ids

// readToken returns the token in the URL fragment (#token=...), or "". It
// does not use URLSearchParams, which would turn a "+" of a base64 token into
// a space.
function readToken() {
  for (const part of location.hash.replace(/^#/, "").split("&")) {
    if (part.startsWith("token=")) {
      try {
        return decodeURIComponent(part.slice(6)).trim();
      } catch {
        return part.slice(6).trim();
      }
    }
  }
  return "";
}

// HTTPError is a failed API call: its status, and the API's reason (its
// {"error": "..."} answer) when there is one.
class HTTPError extends Error {
  constructor(url, status, reason) {
    super(reason || `${url}: HTTP ${status}`);
    this.status = status;
  }
}

async function getJSON(url) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch(url, { headers, cache: "no-store" });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new HTTPError(url, resp.status, typeof body.error === "string" ? body.error : "");
  }
  return resp.json();
}

// ---- Transport: events, or polling when they are unavailable ----------------

// setConn and showNotice change their live regions only when the text
// changes, so a screen reader does not announce "live" every 2 seconds.
function setConn(state, text) {
  $("conn").dataset.conn = state;
  const el = $("conn-text");
  if (el.textContent !== text) el.textContent = text;
}

function showNotice(text) {
  const el = $("notice");
  if (el.textContent !== text) el.textContent = text;
  el.hidden = !text;
}

function accept(snap, gen) {
  if (gen !== query.gen) return; // the answer to a page no longer shown
  const start = performance.now();
  page.snap = snap;
  page.received = Date.now();
  showNotice("");
  ingest(snap);
  measure("botfleet:ingest", start);
  scheduleRender();
}

function failed(err) {
  if (err instanceof HTTPError && (err.status === 401 || err.status === 403)) {
    setConn("unauthorized", "unauthorized");
    showNotice(token
      ? "The fleet API refused the token in this page's URL (#token=…): check METRICS_AUTH_TOKEN."
      : "The fleet API needs a token: open this page as …/#token=<METRICS_AUTH_TOKEN>.");
    return;
  }
  setConn("reconnecting", "reconnecting…");
  // The API answers 503 with its reason when Redis cannot be read.
  if (err instanceof HTTPError && err.status === 503) showNotice(err.message);
}

// startPolling fetches api/fleet every POLL_MS, one request at a time, and
// backs off while it fails. transport.poll asks for the next fetch now.
function startPolling() {
  let delay = POLL_MS;
  let timer = 0;
  let busy = false;
  const tick = async () => {
    clearTimeout(timer);
    if (busy) return;
    busy = true;
    const gen = query.gen;
    try {
      accept(await getJSON(`${API}?${params()}`), gen);
      setConn("live", "live (polling)");
      delay = POLL_MS;
    } catch (err) {
      failed(err);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
    busy = false;
    timer = setTimeout(tick, gen === query.gen ? delay : 0);
  };
  transport.stop = null;
  transport.poll = tick;
  tick();
}

// startEvents listens to the event stream. EventSource reconnects by itself
// after a dropped connection; after SSE_MAX_ERRORS errors in a row, a refused
// connection (an HTTP error, a proxy that does not pass the stream) or
// SILENCE_MS without an event, the page polls instead, until it is reloaded.
function startEvents() {
  const gen = query.gen;
  const es = new EventSource(`${EVENTS}?${params()}`);
  let errors = 0;
  let last = Date.now();
  let over = false;
  const stop = () => {
    over = true;
    clearInterval(watchdog);
    es.close();
  };
  const giveUp = () => {
    if (over) return;
    stop();
    console.warn("botfleet: the fleet event stream failed; polling " + API + " instead");
    startPolling();
  };
  transport.stop = stop;
  const watchdog = setInterval(() => {
    if (Date.now() - last > SILENCE_MS) giveUp();
  }, 1000);
  es.addEventListener("fleet", (ev) => {
    errors = 0;
    last = Date.now();
    let snap;
    try {
      snap = JSON.parse(ev.data);
    } catch {
      return; // a torn or foreign event: the next one replaces it
    }
    accept(snap, gen);
    setConn("live", "live");
  });
  es.addEventListener("error", (ev) => {
    if (ev instanceof MessageEvent) {
      // Not the connection: the server's "error" event, sent when it could
      // not read the fleet. The stream goes on; the last fleet stays shown.
      last = Date.now();
      let reason = "";
      try {
        reason = JSON.parse(ev.data).error;
      } catch {}
      setConn("reconnecting", "fleet unavailable");
      showNotice(typeof reason === "string" && reason ? reason : "The fleet cannot be read.");
      return;
    }
    errors++;
    if (es.readyState === EventSource.CLOSED || errors >= SSE_MAX_ERRORS) {
      giveUp();
      return;
    }
    setConn("reconnecting", "reconnecting…");
  });
}

// ---- Data: records, points and rates -----------------------------------------

// seconds turns a timestamp (Unix seconds, or a date string) into seconds.
function seconds(v) {
  if (typeof v === "number") return v;
  if (typeof v !== "string" || v === "") return NaN;
  const n = Number(v);
  return Number.isNaN(n) ? Date.parse(v) / 1000 : n;
}

function num(v) {
  return v === null || v === undefined || v === "" ? NaN : Number(v);
}

// point is one sparkline sample from a fleet worker or a history entry.
function point(w) {
  const r = w.resources || {};
  return {
    t: seconds(w.timestamp),
    mem: num(w.memory_mb ?? r.memory_mb),
    cpu: num(w.cpu_percent ?? r.cpu_percent),
    jobs: num(w.jobs_processed),
  };
}

// addPoints merges points into rec.pts, sorted by time, one per timestamp,
// the newest MAX_POINTS kept.
function addPoints(rec, pts) {
  let changed = false;
  for (const p of pts) {
    if (!Number.isFinite(p.t)) continue;
    const last = rec.pts[rec.pts.length - 1];
    if (!last || p.t > last.t) {
      rec.pts.push(p);
    } else if (rec.pts.some((q) => q.t === p.t)) {
      continue;
    } else {
      rec.pts.push(p);
      rec.pts.sort((a, b) => a.t - b.t);
    }
    changed = true;
  }
  if (rec.pts.length > MAX_POINTS) rec.pts.splice(0, rec.pts.length - MAX_POINTS);
  if (changed) rec.version++;
}

// rate is a worker's jobs per second over its last RATE_WINDOW_S of beats,
// from the jobs_processed deltas; null while that is unknown. A counter that
// went down (a restarted worker) starts the window afresh.
function rate(rec) {
  const pts = rec.pts;
  const last = pts[pts.length - 1];
  if (!last || !Number.isFinite(last.jobs)) return null;
  let first = last;
  for (let i = pts.length - 2; i >= 0; i--) {
    const p = pts[i];
    if (last.t - p.t > RATE_WINDOW_S || !Number.isFinite(p.jobs) || p.jobs > first.jobs) break;
    first = p;
  }
  if (last.t <= first.t) return null;
  return (last.jobs - first.jobs) / (last.t - first.t);
}

// showQuery moves to another page of the fleet: the cards of the old one
// go, and the transport asks for the new one at once.
function showQuery(change) {
  Object.assign(query, change);
  query.gen++;
  for (const rec of workers.values()) {
    viewport.unobserve(rec.el);
    rec.el.remove();
  }
  workers.clear();
  viewport.queue.length = 0;
  page.reorder = true;
  renderPager(null);
  if (transport.stop) {
    transport.stop();
    startEvents();
  } else if (transport.poll) {
    transport.poll();
  }
}

// renderPager enables the page buttons and says which page this is.
function renderPager(snap) {
  $("prev").disabled = query.back.length === 0;
  $("next").disabled = !snap?.next_cursor;
  const n = query.back.length;
  const shown = snap?.workers?.length ?? 0;
  const total = snap?.summary?.total;
  $("range").textContent = snap && total !== undefined && total > shown
    ? `page ${nf.format(n + 1)}: ${nf.format(shown)} workers of ${nf.format(total)}`
    : "";
}

function ingest(snap) {
  const now = Date.now();
  const present = new Set();
  // A page that stops short of the fleet's end (next_cursor) loses its last
  // workers when others join before them: those moved to the next page, they
  // did not leave. With a state filter, a worker that changed state left the
  // page, not the fleet.
  const next = typeof snap.next_cursor === "string" ? snap.next_cursor : "";
  const moved = (id) => (next !== "" && id > next) || query.state !== "";
  for (const w of snap.workers || []) {
    const id = String(w.worker_id ?? "");
    present.add(id);
    let rec = workers.get(id);
    if (!rec) {
      rec = newRecord(id);
      workers.set(id, rec);
      page.reorder = true;
    }
    rec.w = w;
    rec.goneAt = 0;
    rec.dirty = true;
    rec.hay = haystack(rec);
    if (w.health !== "invalid") addPoints(rec, [point(w)]);
  }
  for (const [id, rec] of workers) {
    if (present.has(id)) continue;
    if (moved(id)) {
      viewport.unobserve(rec.el);
      rec.el.remove();
      workers.delete(id);
      page.reorder = true;
      continue;
    }
    if (!rec.goneAt) {
      rec.goneAt = now;
      rec.dirty = true;
      rec.hay = haystack(rec);
    }
    if (now - rec.goneAt > GONE_MS) {
      rec.el.remove();
      viewport.unobserve(rec.el);
      workers.delete(id);
      page.reorder = true;
    }
  }
}

// haystack is what the filter box searches in a worker.
function haystack(rec) {
  const w = rec.w;
  const state = rec.goneAt ? "gone" : w.health === "invalid" ? "invalid" : w.state;
  return [rec.id, w.hostname, w.region, w.deployment_env, w.version, state, w.health, w.current_job].join(" ").toLowerCase();
}

// ---- What is on screen, and the history of what came into view --------------

const viewport = {
  observer: null,
  queue: [], // records whose history to fetch
  running: 0,
  observe(el) {
    this.observer?.observe(el);
  },
  unobserve(el) {
    this.observer?.unobserve(el);
  },
  // start watches the cards. Without IntersectionObserver every card counts
  // as visible, which is correct, only slower.
  start() {
    if (!("IntersectionObserver" in window)) return;
    this.observer = new IntersectionObserver((entries) => {
      let show = false;
      for (const e of entries) {
        const rec = workers.get(e.target.dataset.workerId);
        if (!rec) continue;
        rec.visible = e.isIntersecting;
        if (!rec.visible) continue;
        show ||= rec.dirty;
        if (!rec.historyQueued) {
          rec.historyQueued = true;
          this.queue.push(rec);
        }
      }
      if (show) scheduleRender();
      this.next();
    }, { rootMargin: "300px" });
  },
  next() {
    while (this.running < HISTORY_PARALLEL && this.queue.length) {
      const rec = this.queue.shift();
      if (workers.get(rec.id) !== rec) continue;
      this.running++;
      getJSON(`${HISTORY}?worker=${encodeURIComponent(rec.id)}&n=${MAX_POINTS}`)
        .then((pts) => {
          if (!Array.isArray(pts)) return;
          addPoints(rec, pts.filter((p) => String(p.worker_id ?? rec.id) === rec.id).map(point));
          rec.dirty = true;
          scheduleRender();
        })
        .catch(() => {}) // the live points still fill the sparklines
        .finally(() => {
          this.running--;
          this.next();
        });
    }
  },
};

// ---- Rendering ---------------------------------------------------------------

function newRecord(id) {
  const el = $("card").content.firstElementChild.cloneNode(true);
  const f = {};
  for (const node of el.querySelectorAll("[data-f]")) f[node.dataset.f] = node;
  f.id.id = "w" + ++seq;
  el.setAttribute("aria-labelledby", f.id.id);
  el.dataset.workerId = id;
  f.id.textContent = id || "(no id)";
  // A new card counts as visible until the observer says otherwise, so the
  // first paint shows it filled in.
  return { id, el, f, w: {}, pts: [], version: 0, drawn: -1, shown: {}, goneAt: 0, hay: "",
    visible: true, dirty: true, historyQueued: !viewport.observer };
}

function scheduleRender() {
  if (page.renderQueued) return;
  page.renderQueued = true;
  setTimeout(() => {
    page.renderQueued = false;
    if (!document.hidden) render();
  }, 0);
}

function render() {
  const start = performance.now();
  renderSummary();
  renderPager(page.snap);
  for (const rec of workers.values()) {
    if (rec.dirty && rec.visible) renderCard(rec);
  }
  placeCards();
  applyFilter();
  measure("botfleet:render", start);
  if (page.firstRender && workers.size > 0) {
    // When the first cards were drawn, counted from the navigation: what a
    // test reads as the first paint of a large fleet.
    page.firstRender = false;
    performance.mark("botfleet:first-render");
  }
}

// measure records a User Timing measure, which shows in the browser's
// profiler (and lets the tests check the page keeps up with many workers),
// keeping the last hundred or so of each name.
function measure(name, start) {
  if (performance.getEntriesByName(name).length >= 100) performance.clearMeasures(name);
  performance.measure(name, { start });
}

function renderSummary() {
  const snap = page.snap || {};
  const list = snap.workers || [];
  const s = snap.summary || {};
  const count = (pred) => list.filter(pred).length;
  const n = {
    total: s.total ?? list.length,
    alive: s.alive ?? count((w) => w.health === "alive"),
    stale: s.stale ?? count((w) => w.health === "stale"),
    invalid: s.invalid ?? count((w) => w.health === "invalid"),
  };
  for (const k of Object.keys(n)) $("s-" + k).textContent = nf.format(n[k]);
  $("s-stale").parentElement.toggleAttribute("data-warn", n.stale > 0);
  $("s-invalid").parentElement.toggleAttribute("data-warn", n.invalid > 0);
  const by = s.by_state || {};
  for (const st of STATES) $("n-" + st).textContent = nf.format(by[st] ?? count((w) => w.state === st));

  let total = null;
  for (const rec of workers.values()) {
    if (rec.goneAt || rec.w.health !== "alive") continue;
    const r = rate(rec);
    if (r !== null) total = (total || 0) + r;
  }
  $("s-rate").textContent = total === null ? "–" : fmtRate(total);
  $("empty").hidden = list.length > 0 || workers.size > 0;
  document.title = `botfleet fleet: ${n.alive} alive` + (n.stale ? `, ${n.stale} stale` : "");
}

// set writes a card field's text only when it changed: with a thousand
// cards, unchanged text costs a comparison, not a layout.
function set(rec, key, text) {
  if (rec.shown[key] === text) return;
  rec.shown[key] = text;
  rec.f[key].textContent = text;
}

function renderCard(rec) {
  rec.dirty = false;
  const w = rec.w;
  const health = rec.goneAt ? "gone" : HEALTHS.includes(w.health) ? w.health : "invalid";
  const state = rec.goneAt ? "GONE" : STATES.includes(w.state) ? w.state : "UNKNOWN";
  if (rec.shown.health !== health) rec.el.dataset.health = rec.shown.health = health;
  if (rec.shown.stateAttr !== state) {
    rec.el.dataset.state = rec.f.state.dataset.state = rec.shown.stateAttr = state;
  }
  const stateText = state !== "UNKNOWN" ? state : health === "invalid" ? "INVALID" : String(w.state || "NO STATE");
  set(rec, "state", w.quiet && !rec.goneAt ? stateText + " · QUIET" : stateText);

  let alert = "";
  if (health === "stale") alert = `stale, last beat ${fmtAge(w.last_beat_age_seconds)} ago`;
  if (health === "invalid") alert = "invalid: " + (w.error || "malformed heartbeat");
  if (health === "gone") alert = `left the fleet ${fmtAge((Date.now() - rec.goneAt) / 1000)} ago`;
  set(rec, "alert", alert);
  rec.f.alert.hidden = !alert;

  const skew = num(w.clock_skew_seconds);
  // The API reports a clock running ahead only; one behind shows as age.
  const note = skew >= 1 ? `clock ${fmtAge(skew)} ahead of Redis` : "";
  set(rec, "note", note);
  rec.f.note.hidden = !note;

  const host = w.hostname || w.system?.hostname || "";
  const container = w.container_id ? ` (${String(w.container_id).slice(0, 12)})` : "";
  set(rec, "host", host ? host + container : "–");
  set(rec, "region", [w.region, w.deployment_env].filter(Boolean).join(" · ") || "–");
  set(rec, "version", w.version || "–");
  const up = num(w.uptime_seconds);
  set(rec, "uptime", w.started_at != null && Number.isFinite(up) ? fmtDuration(up) : "–");
  if (rec.shown.hostTitle !== host) rec.f.host.title = rec.shown.hostTitle = host;

  const res = w.resources || {};
  set(rec, "mem", Number.isFinite(num(res.memory_mb)) ? fmtNum(num(res.memory_mb)) + " MiB" : "–");
  set(rec, "cpu", Number.isFinite(num(res.cpu_percent)) ? fmtNum(num(res.cpu_percent)) + " %" : "–");
  if (rec.drawn !== rec.version) {
    rec.drawn = rec.version;
    drawSpark(rec, "mem", "Memory", "MiB");
    drawSpark(rec, "cpu", "CPU", "%");
  }

  const done = num(w.jobs_processed);
  const bad = num(w.jobs_failed);
  set(rec, "done", Number.isFinite(done) ? nf.format(done) : "–");
  set(rec, "failed", Number.isFinite(bad) ? nf.format(bad) : "–");
  rec.f.failed.toggleAttribute("data-bad", bad > 0);
  const r = rate(rec);
  set(rec, "rate", r === null ? "–" : fmtRate(r) + "/s");
  const job = w.current_job ? String(w.current_job) : "";
  set(rec, "job", job || "none");
  rec.f.job.toggleAttribute("data-none", !job);
  if (rec.shown.jobTitle !== job) rec.f.job.title = rec.shown.jobTitle = job;
}

// drawSpark draws one series of rec.pts as a line and an area over time.
function drawSpark(rec, key, label, unit) {
  const pts = rec.pts.filter((p) => Number.isFinite(p[key]));
  const svg = rec.f[key + "svg"];
  if (pts.length === 0) {
    rec.f[key + "line"].setAttribute("d", "");
    rec.f[key + "area"].setAttribute("d", "");
    svg.setAttribute("aria-label", `${label}: no samples yet`);
    return;
  }
  const vals = pts.map((p) => p[key]);
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (key === "cpu") {
    lo = 0; // CPU is read against zero
    hi = Math.max(hi * 1.1, 1);
  } else {
    // Memory zooms in on its range, or a steady 200 MiB would be a flat line.
    const pad = Math.max((hi - lo) * 0.15, 0.5);
    lo -= pad;
    hi += pad;
  }
  const t0 = pts[0].t;
  const span = pts[pts.length - 1].t - t0;
  const x = (p) => (span > 0 ? ((p.t - t0) / span) * 100 : 100);
  const y = (v) => 29 - ((v - lo) / (hi - lo)) * 27;
  let d = pts.length === 1 ? `M0 ${y(vals[0]).toFixed(2)}` : "";
  pts.forEach((p, i) => {
    d += `${d ? " L" : "M"}${x(p).toFixed(2)} ${y(vals[i]).toFixed(2)}`;
  });
  rec.f[key + "line"].setAttribute("d", d);
  rec.f[key + "area"].setAttribute("d", `${d} L100 30 L0 30 Z`);
  svg.setAttribute("aria-label",
    `${label} over the last ${pts.length} beats: now ${fmtNum(vals[vals.length - 1])} ${unit}, ` +
    `lowest ${fmtNum(Math.min(...vals))}, highest ${fmtNum(Math.max(...vals))}`);
}

// placeCards puts the cards in worker id order ("worker-2" before
// "worker-10"), moving nodes only when a worker joined or left.
function placeCards() {
  if (!page.reorder) return;
  page.reorder = false;
  const frag = document.createDocumentFragment();
  const added = [];
  for (const id of [...workers.keys()].sort(byID)) {
    const el = workers.get(id).el;
    if (!el.isConnected) added.push(el);
    frag.append(el);
  }
  $("workers").append(frag);
  for (const el of added) viewport.observe(el);
}

function applyFilter() {
  const q = page.filter;
  let shown = 0;
  for (const rec of workers.values()) {
    const hide = q !== "" && !rec.hay.includes(q);
    if (rec.el.hidden !== hide) rec.el.hidden = hide;
    if (!hide) shown++;
  }
  $("shown").textContent = q ? `showing ${nf.format(shown)} of ${nf.format(workers.size)}` : "";
}

// ---- Formatting --------------------------------------------------------------

function fmtNum(v) {
  return v >= 100 ? Math.round(v).toString() : v.toFixed(1);
}

function fmtRate(v) {
  if (v === 0) return "0";
  return v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
}

function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

function fmtAge(s) {
  s = num(s);
  if (!Number.isFinite(s)) return "?";
  return s < 90 ? `${Math.max(0, Math.round(s))}s` : fmtDuration(s);
}

// ---- Start -------------------------------------------------------------------

function tickClock() {
  const el = $("updated");
  if (!page.received) return;
  const age = (Date.now() - page.received) / 1000;
  el.textContent = age < 5 ? "updated just now" : `no update for ${fmtAge(age)}`;
  // A worker that left counts its time out even when no update comes.
  let gone = false;
  for (const rec of workers.values()) {
    if (rec.goneAt) gone = rec.dirty = true;
  }
  if (gone) scheduleRender();
}

function startPager() {
  $("state").addEventListener("change", (ev) => showQuery({ state: ev.target.value, cursor: "", back: [] }));
  let wait = 0;
  $("prefix").addEventListener("input", (ev) => {
    clearTimeout(wait);
    wait = setTimeout(() => showQuery({ prefix: ev.target.value.trim(), cursor: "", back: [] }), PREFIX_WAIT_MS);
  });
  $("next").addEventListener("click", () => {
    const next = page.snap?.next_cursor;
    if (next) showQuery({ cursor: next, back: [...query.back, query.cursor] });
  });
  $("prev").addEventListener("click", () => {
    if (query.back.length === 0) return;
    showQuery({ cursor: query.back[query.back.length - 1], back: query.back.slice(0, -1) });
  });
}

async function main() {
  $("filter").addEventListener("input", (ev) => {
    page.filter = ev.target.value.trim().toLowerCase();
    applyFilter();
  });
  startPager();
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) scheduleRender();
  });
  window.addEventListener("hashchange", () => {
    if (readToken() !== token) location.reload();
  });
  setInterval(tickClock, 1000);
  viewport.start();

  if (token || !("EventSource" in window)) {
    startPolling();
    return;
  }
  // One fetch of a screenful paints the page at once, and tells whether
  // the API wants a token; the stream's first event, sent as it opens,
  // brings the rest of the page.
  try {
    const gen = query.gen;
    accept(await getJSON(`${API}?${params(FIRST_SIZE)}`), gen);
  } catch (err) {
    failed(err);
    if (err instanceof HTTPError) {
      startPolling();
      return;
    }
  }
  startEvents();
}

main();
