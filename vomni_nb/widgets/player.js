// The live speech player (an anywidget ES module: `initialize` per model, `render` per view).
//
// Rule 1: audio arrives as PCM16 little-endian in the binary buffers of custom messages, never as a
//         trait or base64 JSON. `initialize` keeps every chunk for its model, so a view that renders
//         after the first chunks (or a second view) still has all of them.
// Rule 2: one AudioContext per view; each chunk becomes an AudioBufferSourceNode started at a running
//         "next start time", so chunks join without gaps or overlaps; a late chunk starts LEAD_S from now.
// Rule 3: `render` returns a cleanup that closes the AudioContext, so re-running a cell never stacks
//         players. When the kernel replaced the view by the static <audio> player because the stream
//         ended (it says so first, with an "end" message), the cleanup hands the playback position to
//         that element before closing: generation is faster than speech, so most of it is still to come.
// Rule 4: browsers start an AudioContext "suspended" until the page has had a user gesture; the view
//         then says "click to listen" and a click resumes it. Chunks are scheduled all the same.
// Rule 5: the page keeps a record of each stream in globalThis.vomniSpeechPlayers[stream_id] (first
//         chunk scheduled, last chunk received, hand-off), so tests and curious users can see what happened.

const LEAD_S = 0.05; // a source started in the past would be clipped: keep this margin from "now"
const PEAKS_PER_S = 100; // waveform resolution (min/max pairs per second of speech)
const HANDOFF_WAIT_MS = 3000; // how long the static <audio> element may take to appear
const stores = new Map(); // stream_id -> chunks and stream state, shared by initialize and render

function now() {
  return performance.timeOrigin + performance.now();
}

function record(id) {
  const all = (globalThis.vomniSpeechPlayers ??= {});
  return (all[id] ??= { id, chunksReceived: 0, chunksScheduled: 0, receivedSeconds: 0 });
}

function decode(view, channels) {
  // A DataView may sit at any byte offset of the message, so read it sample by sample (little-endian).
  const frames = Math.floor(view.byteLength / (2 * channels));
  const data = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let i = 0, at = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++, at += 2) data[c][i] = view.getInt16(at, true) / 32768;
  }
  return { data, frames };
}

function peaksOf(samples, rate) {
  const block = Math.max(1, Math.round(rate / PEAKS_PER_S));
  const peaks = new Float32Array(2 * Math.ceil(samples.length / block));
  for (let b = 0; b * block < samples.length; b++) {
    let lo = 0, hi = 0;
    for (let i = b * block; i < Math.min(samples.length, (b + 1) * block); i++) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    peaks[2 * b] = lo;
    peaks[2 * b + 1] = hi;
  }
  return peaks;
}

function initialize({ model }) {
  const id = model.get("stream_id");
  const store = {
    id, chunks: [], seconds: 0, ended: false, aborted: false, note: "", listeners: new Set(),
  };
  stores.set(id, store);
  const rec = record(id);
  const onMessage = (msg, buffers) => {
    if (msg.type === "chunk" && buffers && buffers.length) {
      const rate = msg.rate || model.get("sample_rate");
      const channels = msg.channels || model.get("channels");
      const { data, frames } = decode(buffers[0], channels);
      store.chunks.push({ data, frames, rate, offset: store.seconds, peaks: peaksOf(data[0], rate) });
      store.seconds += frames / rate;
      rec.chunksReceived += 1;
      rec.firstReceivedAt ??= now();
      rec.lastReceivedAt = now();
      rec.receivedSeconds = store.seconds;
    } else if (msg.type === "end") {
      store.ended = true;
      rec.endedAt = now();
    } else if (msg.type === "abort") {
      store.aborted = true;
      store.note = msg.note || "stopped";
      rec.abortedAt = now();
    } else if (msg.type === "note") {
      store.note = msg.note || "";
    }
    for (const listener of store.listeners) listener(msg.type);
  };
  model.on("msg:custom", onMessage);
  return () => {
    model.off("msg:custom", onMessage);
    stores.delete(id);
  };
}

class Engine {
  constructor(store, rec, autoplay) {
    this.store = store;
    this.rec = rec;
    this.ctx = new AudioContext();
    this.next = 0; // AudioContext time at which the next chunk starts
    this.index = 0; // store.chunks[index] is the next chunk to schedule
    this.segments = []; // {at, offset, duration, source}: where each scheduled chunk sits in both clocks
    this.stopped = !autoplay;
    this.closed = false;
    this.releasing = false;
    rec.contextState = this.ctx.state;
  }

  pump() {
    if (this.stopped || this.closed) return;
    while (this.index < this.store.chunks.length) this.schedule(this.store.chunks[this.index++]);
  }

  schedule(chunk) {
    const ctx = this.ctx;
    const buffer = ctx.createBuffer(chunk.data.length, chunk.frames, chunk.rate);
    chunk.data.forEach((samples, c) => buffer.copyToChannel(samples, c));
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const at = Math.max(this.next, ctx.currentTime + LEAD_S);
    source.start(at);
    this.segments.push({ at, offset: chunk.offset, duration: buffer.duration, source });
    this.next = at + buffer.duration;
    this.rec.chunksScheduled += 1;
    if (this.rec.firstScheduledAt === undefined) {
      this.rec.firstScheduledAt = now();
      this.rec.contextStateAtFirstSchedule = ctx.state;
    }
  }

  position() {
    // Seconds of speech played so far: map the context clock through the scheduled segments.
    const t = this.ctx.currentTime;
    let position = 0;
    for (const s of this.segments) {
      if (t < s.at) break;
      position = s.offset + Math.min(t - s.at, s.duration);
    }
    return position;
  }

  get playedOut() {
    return this.store.ended && this.index === this.store.chunks.length && this.ctx.currentTime >= this.next;
  }

  get idle() {
    return this.stopped || this.playedOut;
  }

  get audible() {
    return !this.idle && !this.closed && this.ctx.state === "running" && this.segments.length > 0;
  }

  play() {
    if (this.closed) return;
    if (this.playedOut || this.stopped) this.rewind();
    this.stopped = false;
    this.ctx.resume();
    this.pump();
  }

  stop() {
    this.rewind();
    this.stopped = true;
  }

  rewind() {
    for (const s of this.segments) {
      try {
        s.source.stop();
      } catch (_) {
        // never started: nothing to stop
      }
    }
    this.segments = [];
    this.index = 0;
    this.next = 0;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.ctx.close();
  }

  closeWhenDone() {
    const left = Math.max(0, this.next - this.ctx.currentTime);
    setTimeout(() => this.close(), 1000 * left + 100);
  }

  release() {
    // The view's cleanup (Rule 3); the view may be removed twice (its output replaced, then its model closed).
    if (this.closed || this.releasing) return;
    this.releasing = true;
    if (!this.store.ended || this.store.aborted || !this.audible) {
      this.rec.handoff = "closed";
      this.close();
      return;
    }
    this.handOff(Date.now() + HANDOFF_WAIT_MS);
  }

  handOff(deadline) {
    const audio = document.querySelector(`[data-vomni-speech="${CSS.escape(this.store.id)}"] audio`);
    if (!audio) {
      if (Date.now() < deadline) {
        setTimeout(() => this.handOff(deadline), 50);
      } else {
        // The static player is elsewhere (another frame) or gone: let what is scheduled play out.
        this.rec.handoff = "played-out";
        this.closeWhenDone();
      }
      return;
    }
    const start = () => {
      if (this.closed) return;
      audio.addEventListener("playing", () => this.close(), { once: true });
      audio.currentTime = this.position();
      this.rec.handoffPosition = audio.currentTime;
      audio.play().then(
        () => { this.rec.handoff = "audio-element"; },
        () => { this.rec.handoff = "played-out"; this.closeWhenDone(); },
      );
    };
    if (audio.readyState >= 1) start();
    else audio.addEventListener("loadedmetadata", start, { once: true });
  }
}

function element(tag, style, text) {
  const node = document.createElement(tag);
  if (style) node.style.cssText = style;
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawWaveform(canvas, store, engine) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(100, Math.floor(canvas.clientWidth * ratio));
  const height = Math.floor(canvas.clientHeight * ratio) || 48;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  const span = Math.max(store.seconds, 5); // seconds across the canvas; grows with the stream
  const played = engine.position();
  const mid = height / 2;
  for (const chunk of store.chunks) {
    const pairs = chunk.peaks.length / 2;
    for (let b = 0; b < pairs; b++) {
      const t = chunk.offset + b / PEAKS_PER_S;
      const x = Math.floor((t / span) * width);
      g.fillStyle = t < played ? "#1976d2" : "#9e9e9e";
      const top = mid - chunk.peaks[2 * b + 1] * mid;
      const bottom = mid - chunk.peaks[2 * b] * mid;
      g.fillRect(x, top, Math.max(1, Math.ceil(width / (span * PEAKS_PER_S))), Math.max(1, bottom - top));
    }
  }
  if (played > 0) {
    g.fillStyle = "#d32f2f";
    g.fillRect(Math.floor((played / span) * width), 0, Math.max(1, ratio), height);
  }
}

function render({ model, el }) {
  const id = model.get("stream_id");
  const store = stores.get(id);
  const rec = record(id);
  if (!store) {
    el.textContent = "speech player: no stream (the kernel closed it)";
    return () => {};
  }
  const engine = new Engine(store, rec, model.get("autoplay"));
  const root = element("div", "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;max-width:720px;padding:4px 0");
  const bar = element("div", "display:flex;align-items:center;gap:8px;margin-bottom:4px");
  const button = element("button", "min-width:9em;cursor:pointer");
  button.type = "button";
  const title = element("span", "font-weight:600", model.get("title"));
  const clock = element("span", "font-variant-numeric:tabular-nums;color:#555");
  const status = element("span", "color:#777");
  const canvas = element("canvas", "width:100%;height:48px;display:block;background:rgba(0,0,0,0.03)");
  bar.append(button, title, clock, status);
  root.append(bar, canvas);
  el.append(root);
  el.classList.add("vomni-speech-player");

  const waiting = () => engine.ctx.state === "suspended" && !engine.stopped;
  const refresh = () => {
    if (engine.closed) return;
    const action = waiting() ? "listen" : engine.idle ? "play" : "stop";
    button.dataset.action = action;
    button.textContent = { listen: "▶ click to listen", play: "▶ play", stop: "■ stop" }[action];
    clock.textContent = `${engine.position().toFixed(1)} s / ${store.seconds.toFixed(1)} s received`;
    status.textContent = store.aborted ? store.note : store.note || (store.ended ? "done" : "streaming…");
    el.dataset.contextState = engine.ctx.state;
    if (rec.firstScheduledAt !== undefined) el.dataset.firstScheduled = String(rec.firstScheduledAt);
    if (rec.lastReceivedAt !== undefined) el.dataset.lastReceived = String(rec.lastReceivedAt);
    drawWaveform(canvas, store, engine);
  };
  // Act on what the button said when it was pressed: the press itself is a user gesture, and Chrome
  // resumes a waiting AudioContext on it, so by the "click" event "click to listen" would read "stop".
  let pressed = null;
  const press = () => { pressed = button.dataset.action; };
  button.addEventListener("pointerdown", press);
  button.addEventListener("keydown", press);
  button.addEventListener("click", () => {
    const action = pressed || button.dataset.action;
    pressed = null;
    if (action === "stop") engine.stop();
    else engine.play();
    refresh();
  });
  const onStore = (type) => {
    if (type === "chunk") engine.pump();
    if (type === "abort") engine.stop();
    refresh();
  };
  store.listeners.add(onStore);
  engine.ctx.addEventListener("statechange", refresh);
  engine.pump();
  refresh();
  let frame = 0;
  let last = 0;
  const tick = (t) => {
    if (t - last > 66) { // about 15 redraws a second is plenty for a playhead
      last = t;
      refresh();
    }
    frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);
  return () => {
    cancelAnimationFrame(frame);
    store.listeners.delete(onStore);
    engine.release();
  };
}

export default { initialize, render };
