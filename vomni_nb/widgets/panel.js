// The server panel (an anywidget ES module): one card per server, refreshed from the `snapshot` trait.
//
// Rule 1: the kernel sends whole snapshots (a small JSON trait); the view redraws from the latest one and
//         keeps only what a person set: which log boxes are open, and which buttons wait for a second click.
// Rule 2: Stop and Restart ask twice (a real model takes minutes to load again). A request the kernel has
//         not taken yet says so ("stop asked") — a kernel without subshells holds comm messages back until
//         the running cell ends (ipywidgets#3468); the row turns "stopping" / "restarting" once it acts.
// Rule 3: between snapshots the view counts uptime and "refreshed … ago" itself, once a second.

const CONFIRM_MS = 4000;
const COLOURS = {
  ready: "#2e7d32", unhealthy: "#ef6c00", exited: "#c62828", unreachable: "#757575",
  stopping: "#6a1b9a", restarting: "#1565c0",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, seconds);
  if (s < 120) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const h = Math.floor(s / 3600);
  return `${h} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function gib(mib) {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${Math.round(mib)} MiB`;
}

function render({ model, el: host }) {
  const root = el("div", "vomni-sp");
  const head = el("div", "vomni-sp-head");
  const title = el("span", "vomni-sp-title", "Servers");
  const summary = el("span", "vomni-sp-muted");
  const refreshed = el("span", "vomni-sp-muted");
  const refreshButton = el("button", "", "↻ refresh");
  refreshButton.title = "refresh now";
  refreshButton.dataset.action = "refresh";
  head.append(title, summary, refreshed, refreshButton);
  const gpus = el("div", "vomni-sp-gpus");
  const list = el("div");
  const note = el("div", "vomni-sp-note vomni-sp-muted");
  root.append(head, gpus, list, note);
  host.append(root);
  host.classList.add("vomni-server-panel");

  const openLogs = new Set(); // keys whose log box a person opened (or closed: see `closedLogs`)
  const closedLogs = new Set();
  const confirming = new Map(); // key -> {action, until}
  const asked = new Map(); // key -> action sent, not yet seen by the kernel
  let receivedAt = Date.now();
  const uptimes = []; // [node, uptime_s at receivedAt]

  const send = (message) => model.send(message);
  refreshButton.addEventListener("click", () => send({ type: "refresh" }));

  function button(row, action, label) {
    const b = el("button", "", label);
    b.dataset.action = action;
    b.dataset.key = row.key;
    const pending = row.pending || asked.get(row.key);
    b.disabled = Boolean(pending) || (action === "restart" && !row.can_restart);
    const waiting = confirming.get(row.key);
    if (waiting && waiting.action === action && waiting.until > Date.now()) {
      b.textContent = `Confirm ${label.toLowerCase()}?`;
      b.classList.add("vomni-sp-confirm");
    }
    b.addEventListener("click", () => {
      const current = confirming.get(row.key);
      if (current && current.action === action && current.until > Date.now()) {
        confirming.delete(row.key);
        asked.set(row.key, action);
        send({ type: action, key: row.key });
      } else {
        confirming.set(row.key, { action, until: Date.now() + CONFIRM_MS });
        setTimeout(draw, CONFIRM_MS + 50);
      }
      draw();
    });
    return b;
  }

  function card(row) {
    const state = row.pending || row.state;
    const waiting = asked.get(row.key);
    const colour = COLOURS[state] || "#757575";
    const node = el("div", "vomni-sp-card");
    node.style.borderLeftColor = colour;
    node.dataset.key = row.key;
    node.dataset.name = row.name;
    node.dataset.state = state;
    if (row.pid) node.dataset.pid = String(row.pid);
    const line = el("div", "vomni-sp-line");
    const stateNode = el("span", "vomni-sp-state", `● ${state}${row.pending ? "…" : ""}`);
    stateNode.style.color = colour;
    if (waiting && !row.pending) {
      stateNode.textContent = `● ${waiting} asked`;
      stateNode.title = "the kernel takes it when the running cell ends";
    }
    const who = el("div");
    who.append(el("div", "vomni-sp-name", row.name));
    if (row.name !== row.model) who.append(el("div", "vomni-sp-model vomni-sp-muted", row.model));
    const where = el("div", "vomni-sp-model vomni-sp-muted");
    const link = el("a", "vomni-sp-url", row.url);
    link.href = row.url;
    link.target = "_blank";
    link.rel = "noopener";
    where.append(link, ` · ${[row.kind, row.keep ? "kept" : ""].filter(Boolean).join(" · ")}`);
    who.append(where);
    const uptime = el("div", "vomni-sp-num");
    if (row.uptime_s !== null && row.state === "ready" && !row.pending) {
      uptime.title = "uptime";
      uptimes.push([uptime, row.uptime_s]);
    }
    const facts = el("div", "vomni-sp-num vomni-sp-muted");
    facts.append(el("div", "", row.pid ? `pid ${row.pid}` : ""));
    if (row.gpu_text) {
      const gpu = el("div", "", `GPU ${row.gpu_text}`);
      gpu.dataset.gpu = row.gpu_text;
      facts.append(gpu);
    }
    const actions = el("div", "vomni-sp-actions");
    if (row.owned && !row.attached) actions.append(button(row, "restart", "Restart"));
    actions.append(button(row, "stop", row.stop_label));
    line.append(stateNode, who, uptime, facts, actions);
    node.append(line);
    if (row.cause) {
      const cause = el("div", "vomni-sp-cause", row.cause + (row.advice ? ` — ${row.advice}` : ""));
      cause.style.color = colour;
      node.append(cause);
    }
    if (row.log_tail) {
      const box = el("details");
      const lines = row.log_tail.split("\n").length;
      box.append(el("summary", "", `last ${lines} log line${lines === 1 ? "" : "s"}`));
      box.append(el("pre", "", row.log_tail));
      box.open = openLogs.has(row.key) || (row.state !== "ready" && !closedLogs.has(row.key));
      box.addEventListener("toggle", () => {
        if (box.open) { openLogs.add(row.key); closedLogs.delete(row.key); }
        else { openLogs.delete(row.key); closedLogs.add(row.key); }
      });
      node.append(box);
    }
    return node;
  }

  function tick() {
    const age = (Date.now() - receivedAt) / 1000;
    for (const [node, base] of uptimes) node.textContent = `up ${duration(base + age)}`;
    const snap = model.get("snapshot") || {};
    const since = snap.taken_at ? Math.max(0, Date.now() / 1000 - snap.taken_at) : null;
    refreshed.textContent = since === null ? "" : `· refreshed ${duration(since)} ago`;
  }

  function draw() {
    const snap = model.get("snapshot") || {};
    const rows = snap.rows || [];
    for (const key of [...asked.keys()]) {
      const row = rows.find((r) => r.key === key);
      if (!row || row.pending) asked.delete(key); // the kernel took it (or the server is gone)
    }
    const ready = rows.filter((r) => r.state === "ready" && !r.pending).length;
    summary.textContent = rows.length ? `· ${rows.length} server${rows.length === 1 ? "" : "s"}, ${ready} ready` : "";
    gpus.replaceChildren();
    for (const gpu of snap.gpus || []) {
      const item = el("div", "vomni-sp-gpu");
      const bar = el("div", "vomni-sp-bar");
      const fill = el("div");
      fill.style.width = `${Math.min(100, (100 * gpu.used_mib) / Math.max(1, gpu.total_mib)).toFixed(1)}%`;
      bar.append(fill);
      item.append(el("span", "", `GPU ${gpu.index}`), bar,
        el("span", "vomni-sp-muted", `${gib(gpu.used_mib)} / ${gib(gpu.total_mib)}`));
      item.title = gpu.name;
      gpus.append(item);
    }
    uptimes.length = 0;
    list.replaceChildren(...(rows.length ? rows.map(card) : [el("div", "vomni-sp-empty vomni-sp-muted", snap.empty_hint || "No servers.")]));
    note.textContent = snap.note || "";
    tick();
  }

  const onSnapshot = () => {
    receivedAt = Date.now();
    draw();
  };
  model.on("change:snapshot", onSnapshot);
  draw();
  const timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    model.off("change:snapshot", onSnapshot);
  };
}

export default { render };
