// The Studio (an anywidget ES module): a prompt form, Generate / Cancel, the results, a strip of past results.
//
// Rule 1: the form is the model's traits: every edit is `model.set` + `save_changes`, and changes made in the
//         kernel (a seed drawn, a form set from code) come back through `change:` events. A field being typed
//         in is never overwritten under the cursor.
// Rule 2: Generate, Cancel, Pin and Save are messages; their outcome comes back as the `status` trait (or a
//         new result). A message the kernel has not taken yet says so after a moment: a kernel without
//         subshells holds comm messages back until the running cell ends (ipywidgets#3468).
// Rule 3: images arrive as JPEG previews in binary buffers (DataViews); each becomes one object URL, freed
//         when the result leaves the page or the view is removed.
// Rule 4: a click on the strip restores that result's settings here in the page (no kernel round trip) and
//         locks its seed. Ctrl/Cmd+Enter in the prompt generates.
// Rule 5: the page keeps a record in globalThis.vomniStudio (clicks and what the view showed, with
//         performance.now() times), so tests and curious users can see what happened and how fast.

const ASKED_MS = 600;
const ICONS = { // 24x24 line icons drawn with currentColor (no emoji: not every system has an emoji font)
  lock: '<rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
  unlock: '<rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 7.6-1.8"/>',
  dice: '<rect x="4" y="4" width="16" height="16" rx="3"/><circle cx="9" cy="9" r="1.3"/><circle cx="15" cy="15" r="1.3"/><circle cx="15" cy="9" r="1.3"/><circle cx="9" cy="15" r="1.3"/>',
  pin: '<path d="M12 16v6"/><path d="M9 3h6l-1 6 3 3v3H7v-3l3-3z"/>',
  save: '<path d="M12 4v11"/><path d="M7 10l5 5 5-5"/><path d="M5 20h14"/>',
  reuse: '<path d="M4 12a8 8 0 1 0 2.5-5.8L4 8.5"/><path d="M4 3.5v5h5"/>',
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function icon(name, label) {
  const span = el("span", "vomni-st-icon");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="15" height="15" fill="none" stroke="currentColor" stroke-width="2"
    stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${ICONS[name]}</svg>`;
  if (label) span.append(el("span", "", label));
  return span;
}

function record() {
  return (globalThis.vomniStudio ??= { events: [] });
}

function note(what, extra) {
  const rec = record();
  const at = performance.now();
  rec.events.push({ what, at, ...extra });
  rec[`${what}At`] = at;
}

function field(labelText, control) {
  const box = el("div");
  const label = el("label", "vomni-st-label", labelText);
  box.append(label, control);
  return box;
}

function render({ model, el: host }) {
  const root = el("div", "vomni-st");
  host.append(root);
  host.classList.add("vomni-studio");
  const urls = new Map(); // result key or "strip-<id>" -> object URL (Rule 3)
  let selected = null; // key of the result shown large
  let lastNewest = null;
  let running = { token: -1, since: 0 };
  let askedTimer = 0;

  const save = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  const send = (message) => model.send(message);

  // ---- the form --------------------------------------------------------------------------------
  const form = el("div", "vomni-st-panel vomni-st-form");
  const prompt = el("textarea");
  prompt.rows = 4;
  prompt.placeholder = "Describe the image…  (Ctrl+Enter generates)";
  prompt.dataset.field = "prompt";
  const negative = el("textarea");
  negative.rows = 2;
  negative.placeholder = "What to avoid (optional)";
  negative.dataset.field = "negative";
  const size = el("select");
  size.dataset.field = "size";
  const count = el("input");
  Object.assign(count, { type: "number", min: 1, max: 16, step: 1 });
  count.dataset.field = "count";

  function slider(name, min, max, step, placeholder) {
    const box = el("div", "vomni-st-slider");
    const range = el("input");
    Object.assign(range, { type: "range", min, max, step });
    const number = el("input");
    Object.assign(number, { type: "number", min, max, step, placeholder });
    number.dataset.field = name;
    range.addEventListener("input", () => { number.value = range.value; save(name, Number(range.value)); sync(); });
    number.addEventListener("change", () => {
      const value = number.value.trim() === "" ? null : Number(number.value);
      save(name, value);
      sync();
    });
    const sync = () => {
      const value = model.get(name);
      box.classList.toggle("vomni-st-auto", value === null || value === undefined);
      if (document.activeElement !== number) number.value = value === null || value === undefined ? "" : String(value);
      if (value !== null && value !== undefined) range.value = String(value);
      else range.value = String(placeholder === "auto" ? min : min);
    };
    box.append(range, number);
    return { box, sync };
  }
  const steps = slider("steps", 1, 100, 1, "auto");
  const guidance = slider("guidance", 0, 20, 0.5, "auto");
  steps.box.title = "denoising steps (empty: the model's default)";
  guidance.box.title = "guidance scale (empty: the model's default)";

  const seed = el("input");
  Object.assign(seed, { type: "text", inputMode: "numeric", placeholder: "random" });
  seed.dataset.field = "seed";
  const lock = el("button");
  lock.type = "button";
  lock.dataset.action = "lock";
  const dice = el("button");
  dice.append(icon("dice"));
  dice.type = "button";
  dice.title = "a new random seed (locked)";
  const seedBox = el("div", "vomni-st-seed");
  seedBox.append(seed, lock, dice);

  const server = el("select");
  server.dataset.field = "server";
  const generate = el("button", "vomni-st-generate", "Generate");
  generate.type = "button";
  generate.dataset.action = "generate";
  const cancel = el("button", "vomni-st-cancel", "Cancel");
  cancel.type = "button";
  cancel.dataset.action = "cancel";
  const go = el("div", "vomni-st-go");
  go.append(generate, cancel);
  const status = el("div", "vomni-st-status");
  const dot = el("span", "vomni-st-dot");
  const statusText = el("span", "vomni-st-statustext");
  const clock = el("span", "vomni-st-muted");
  status.append(dot, statusText, clock);
  const progress = el("div", "vomni-st-progress");
  const progressFill = el("div");
  progress.append(progressFill);
  const sizeCount = el("div", "vomni-st-row");
  sizeCount.append(field("Size", size), field("Count", count));
  const knobs = el("div", "vomni-st-row");
  knobs.append(field("Steps", steps.box), field("Guidance", guidance.box));
  form.append(field("Prompt", prompt), field("Negative prompt", negative), sizeCount, knobs,
    field("Seed", seedBox), field("Server", server), go, status, progress);

  // ---- the stage: the selected result large, this session's results small --------------------------
  const stage = el("div", "vomni-st-stage");
  const main = el("div", "vomni-st-main");
  const thumbs = el("div", "vomni-st-thumbs vomni-st-results");
  const noteLine = el("div", "vomni-st-note");
  stage.append(main, thumbs, noteLine);
  const strip = el("div", "vomni-st-panel vomni-st-strip");
  const stripTitle = el("div", "vomni-st-label", "History · click to reuse the settings");
  const stripThumbs = el("div", "vomni-st-thumbs");
  strip.append(stripTitle, stripThumbs);
  root.append(form, stage, strip);

  for (const [node, name] of [[prompt, "prompt"], [negative, "negative"]]) {
    node.addEventListener("input", () => save(name, node.value));
  }
  size.addEventListener("change", () => save("size", size.value));
  count.addEventListener("change", () => save("count", Math.max(1, Math.min(16, Math.round(Number(count.value) || 1)))));
  seed.addEventListener("input", () => {
    const digits = seed.value.replace(/[^0-9]/g, "");
    if (digits !== seed.value) seed.value = digits;
    save("seed", digits);
    if (digits && !model.get("seed_locked")) save("seed_locked", true); // a seed typed in is the one wanted
    drawSeed();
  });
  lock.addEventListener("click", () => { save("seed_locked", !model.get("seed_locked")); drawSeed(); });
  dice.addEventListener("click", () => {
    save("seed", String(Math.floor(Math.random() * 2 ** 32)));
    save("seed_locked", true);
    drawSeed();
  });
  server.addEventListener("change", () => save("server", server.value));
  server.addEventListener("focus", () => send({ type: "servers" }));
  const ask = (what) => {
    note(`${what}Clicked`);
    send({ type: what });
    const token = (model.get("status") || {}).token;
    clearTimeout(askedTimer);
    askedTimer = setTimeout(() => {
      if ((model.get("status") || {}).token === token) {
        statusText.textContent = `${what} asked: the kernel takes it when the running cell ends`;
      }
    }, ASKED_MS);
  };
  generate.addEventListener("click", () => ask("generate"));
  cancel.addEventListener("click", () => ask("cancel"));
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      event.stopPropagation(); // not the notebook's "run cell"
      if (!generate.disabled) ask("generate");
    }
  });

  // ---- drawing from the model ---------------------------------------------------------------------
  function setValue(node, value) {
    if (document.activeElement !== node) node.value = value ?? "";
  }

  function drawSeed() {
    const locked = model.get("seed_locked");
    setValue(seed, model.get("seed"));
    lock.replaceChildren(icon(locked ? "lock" : "unlock"));
    lock.title = locked ? "seed locked: Generate reuses it (click for a random seed each time)"
      : "random seed each Generate (click to lock this one)";
    lock.classList.toggle("vomni-st-on", Boolean(locked));
    seed.style.fontStyle = locked ? "normal" : "italic";
  }

  function drawForm() {
    setValue(prompt, model.get("prompt"));
    setValue(negative, model.get("negative"));
    size.replaceChildren(...(model.get("sizes") || []).map(([value, label]) => {
      const option = el("option", "", label);
      option.value = value;
      return option;
    }));
    const wanted = model.get("size");
    if (wanted && ![...size.options].some((o) => o.value === wanted)) {
      const option = el("option", "", wanted.replace("x", " × "));
      option.value = wanted;
      size.prepend(option);
    }
    size.value = wanted;
    setValue(count, String(model.get("count")));
    steps.sync();
    guidance.sync();
    drawSeed();
    drawServers();
  }

  function drawServers() {
    const options = model.get("servers") || [];
    const current = model.get("server");
    server.replaceChildren(...options.map((o) => {
      const option = el("option", "", o.label === o.url ? o.url : `${o.label} — ${o.url.replace(/^https?:\/\//, "")}`);
      option.value = o.key;
      return option;
    }));
    if (!options.length) {
      const option = el("option", "", "no image server running");
      option.value = "";
      server.append(option);
    }
    server.value = options.some((o) => o.key === current) ? current : (options[0] || { key: "" }).key;
    drawStatus();
  }

  function drawStatus() {
    const st = model.get("status") || {};
    root.dataset.state = st.state || "idle";
    const busy = st.state === "running";
    if (busy && running.token !== st.token && running.since === 0) running = { token: st.token, since: performance.now() };
    if (!busy) running = { token: st.token, since: 0 };
    generate.disabled = busy || !(model.get("servers") || []).length;
    cancel.disabled = !busy;
    generate.textContent = busy ? "Generating…" : "Generate";
    const idleText = (model.get("servers") || []).length ? "ready" : "start an image server, then pick it here";
    statusText.textContent = st.text || idleText;
    progress.style.visibility = st.total > 1 && (busy || st.done < st.total) ? "visible" : "hidden";
    progressFill.style.width = st.total ? `${(100 * (st.done || 0)) / st.total}%` : "0";
    tickClock();
    if (st.state === "cancelled") note("cancelledShown", { token: st.token });
    if (st.state === "done") note("doneShown", { token: st.token });
  }

  function tickClock() {
    clock.textContent = running.since ? `${((performance.now() - running.since) / 1000).toFixed(1)} s` : "";
  }

  function urlOf(key, view) {
    if (!urls.has(key)) urls.set(key, URL.createObjectURL(new Blob([view], { type: "image/jpeg" })));
    return urls.get(key);
  }

  function restore(params, from) {
    for (const name of ["prompt", "negative", "size", "steps", "guidance", "seed", "seed_locked"]) {
      if (params[name] !== undefined && !(name === "size" && !params.size)) model.set(name, params[name]);
    }
    const match = (model.get("servers") || []).find((o) => params.model && o.model === params.model);
    if (match) model.set("server", match.key);
    model.save_changes();
    drawForm();
    noteLine.textContent = `settings of ${from} restored (seed ${params.seed || "random"}${params.seed ? ", locked" : ""})`;
    note("restored", { from });
  }

  function drawResults() {
    const results = model.get("results") || [];
    const keys = new Set(results.map((r) => r.key));
    for (const [key, url] of urls) {
      if (!key.startsWith("strip-") && !keys.has(key)) { URL.revokeObjectURL(url); urls.delete(key); }
    }
    // A new image takes the stage; a click on a thumbnail picks another until the next one arrives.
    const newest = results.length ? results[0].key : null;
    if (newest !== lastNewest || !keys.has(selected)) selected = newest;
    lastNewest = newest;
    const shown = results.find((r) => r.key === selected);
    main.replaceChildren();
    if (!shown) {
      main.append(el("div", "vomni-st-empty", "Your images appear here.\nWrite a prompt and press Generate."));
    } else {
      const img = el("img");
      img.src = urlOf(shown.key, shown.preview);
      img.alt = shown.prompt;
      img.dataset.key = shown.key;
      img.className = "vomni-st-image";
      const caption = el("div", "vomni-st-caption");
      const facts = [`seed ${shown.seed}`, shown.elapsed_s !== null ? `${shown.elapsed_s.toFixed(1)} s` : "",
        shown.size.replace("x", " × "), shown.entry_id !== null ? `#${shown.entry_id}` : ""].filter(Boolean);
      const factsNode = el("span", "vomni-st-facts", facts.join(" · "));
      factsNode.dataset.seed = shown.seed;
      const buttons = [["pin", "Pin", "show it as a static output under the Studio (kept in the saved notebook)"],
        ["save", "Save", "write the image file (with its recipe) into the save folder"],
        ["reuse", "Reuse", "put its settings back in the form (seed locked)"]].map(([action, label, title]) => {
        const b = el("button");
        b.append(icon(action, label));
        b.type = "button";
        b.title = title;
        b.dataset.action = action;
        b.addEventListener("click", () => {
          if (action === "reuse") restore({ ...shown, seed_locked: true }, `seed ${shown.seed}`);
          else { note(`${action}Clicked`); send({ type: action, key: shown.key }); }
        });
        return b;
      });
      const actions = el("span", "vomni-st-actions");
      actions.append(...buttons);
      caption.append(factsNode, actions, el("div", "vomni-st-prompt", shown.prompt));
      main.append(img, caption);
    }
    thumbs.replaceChildren(...results.map((r) => {
      const b = el("button");
      b.type = "button";
      b.title = `seed ${r.seed} · ${r.prompt}`;
      b.classList.toggle("vomni-st-selected", r.key === selected);
      const img = el("img");
      img.src = urlOf(r.key, r.preview);
      b.append(img, el("span", "", r.seed));
      b.addEventListener("click", () => { selected = r.key; drawResults(); });
      return b;
    }));
    thumbs.style.display = results.length > 1 ? "flex" : "none";
    if (shown) note("imageShown", { key: shown.key, count: results.length });
  }

  function drawStrip() {
    const items = model.get("strip") || [];
    stripThumbs.replaceChildren(...items.map((item) => {
      const b = el("button");
      b.type = "button";
      b.dataset.id = String(item.id);
      const p = item.params || {};
      b.title = `#${item.id} · seed ${p.seed} · ${p.size || ""}\n${p.prompt || ""}`;
      const img = el("img");
      img.src = urlOf(`strip-${item.id}`, item.thumb);
      b.append(img, el("span", "", `#${item.id}`));
      b.addEventListener("click", () => restore(p, `#${item.id}`));
      return b;
    }));
    strip.style.display = items.length ? "block" : "none";
  }

  function drawNote() {
    const text = model.get("history_note");
    if (text) noteLine.textContent = text;
  }

  const handlers = {
    "change:prompt": () => setValue(prompt, model.get("prompt")),
    "change:negative": () => setValue(negative, model.get("negative")),
    "change:size change:sizes change:count change:steps change:guidance": drawForm,
    "change:seed change:seed_locked": drawSeed,
    "change:servers change:server": drawServers,
    "change:status": drawStatus,
    "change:results": drawResults,
    "change:strip": drawStrip,
    "change:history_note": drawNote,
  };
  for (const [events, handler] of Object.entries(handlers)) model.on(events, handler);
  drawForm();
  drawResults();
  drawStrip();
  drawNote();
  const timer = setInterval(tickClock, 100);
  return () => {
    clearInterval(timer);
    clearTimeout(askedTimer);
    for (const [events, handler] of Object.entries(handlers)) model.off(events, handler);
    for (const url of urls.values()) URL.revokeObjectURL(url);
    urls.clear();
  };
}

export default { render };
