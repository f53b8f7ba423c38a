// tickwire's live page. One WebSocket per tab, nothing shared between tabs.
// Ingest is separate from render: messages only update plain state and mark rows dirty;
// one requestAnimationFrame callback paints what changed (never a DOM write per message).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const DEFAULT_SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "JPM", "XOM", "SPY"];
  const HISTORY = 600;          // points per symbol: 60 s at one point per 100 ms
  const SAMPLE_MS = 100;        // chart resolution; later updates in a bucket overwrite it
  const SPARK_POINTS = 300;     // the last 30 s in a row's sparkline
  const BACKOFF_MAX_MS = 10000;
  const RECORD = 64, HEADER = 16;  // binary frame layout: README, "Binary encoding"
  const ROWS_PER_FRAME_MIN = 8;

  // ------------------------------------------------------------------ state (this tab only)
  const state = {
    ws: null, attempt: 0, opened: false, closedBeforeOpen: 0, retryTimer: 0,
    epoch: null, nextId: 1, pending: new Map(),
    names: [], ref: new Map(),      // symbol id -> name; name -> reference data
    rows: new Map(),                // name -> Row
    watch: initialWatchlist(),
    selected: null,
    ticks: 0, lat: [], rate: 0, latency: null, lastMeter: performance.now(),
    detailDirty: true, detailPainted: 0, cursor: 0, restarted: false,
  };

  function feedUrl() {
    let url = params.get("url");
    if (!url) {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      url = `${scheme}//${location.host}/v1`;
    }
    const token = params.get("token");
    if (token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
    return url;
  }

  function initialWatchlist() {
    const fromUrl = params.get("symbols");
    if (fromUrl) return fromUrl.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
    try {
      const saved = JSON.parse(localStorage.getItem("tickwire.watchlist") || "null");
      if (Array.isArray(saved)) return saved;
    } catch (_) { /* private mode or bad JSON: use the default */ }
    return DEFAULT_SYMBOLS.slice();
  }

  function saveWatchlist() {
    try { localStorage.setItem("tickwire.watchlist", JSON.stringify(state.watch)); } catch (_) {}
  }

  class Row {
    constructor(sym) {
      this.sym = sym;
      this.bid = NaN; this.ask = NaN; this.last = NaN; this.volume = 0; this.seq = 0;
      this.lastSize = 0; this.prevLast = NaN; this.dir = 0;
      this.hist = new Float64Array(HISTORY).fill(NaN);  // mid price ring
      this.head = -1; this.bucket = -1; this.filled = 0;
      this.dirty = true; this.sparkDirty = true;
      this.el = null;
    }
    update(bid, ask, last, volume, seq, lastSize, nowMs) {
      if (seq < this.seq) state.restarted = true;  // per-symbol seq never falls within a run
      if (last !== this.last && !Number.isNaN(this.last)) this.dir = last > this.last ? 1 : -1;
      this.bid = bid; this.ask = ask; this.last = last; this.volume = volume;
      this.seq = seq; this.lastSize = lastSize; this.dirty = true;
      const bucket = Math.floor(nowMs / SAMPLE_MS);
      if (bucket !== this.bucket) {
        this.bucket = bucket; this.head = (this.head + 1) % HISTORY; this.sparkDirty = true;
        if (this.filled < HISTORY) this.filled++;
      }
      this.hist[this.head] = (bid + ask) / 2;
    }
    series(max) {  // up to the last `max` points, oldest first
      const n = Math.min(max, this.filled);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = this.hist[(this.head - n + 1 + i + HISTORY * 2) % HISTORY];
      return out;
    }
  }

  // ------------------------------------------------------------------ connection
  function connect() {
    clearTimeout(state.retryTimer);
    state.opened = false;
    // After a refusal the state stays "refused" while retrying: no flicker, and the reason holds.
    if (state.closedBeforeOpen) setStatus("refused", "refused, retrying");
    else setStatus("connecting", "connecting");
    let ws;
    try {
      ws = new WebSocket(feedUrl(), ["tickwire.v1.binary", "tickwire.v1"]);
    } catch (err) {
      showBanner(`Cannot open the feed at ${feedUrl()}: ${err.message}`, true);
      return;
    }
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => { state.opened = true; state.closedBeforeOpen = 0; };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") onJson(JSON.parse(ev.data));
      else onBinary(ev.data);
    };
    ws.onclose = (ev) => onClose(ws, ev);
  }

  function onClose(ws, ev) {
    if (state.ws !== ws) return;
    state.ws = null;
    for (const { reject } of state.pending.values()) reject(new Error("connection closed"));
    state.pending.clear();
    const delay = Math.min(BACKOFF_MAX_MS, 250 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
    state.attempt++;
    if (!state.opened) {
      // A refused upgrade (HTTP 401 for a wrong token) reaches a browser only as a WebSocket
      // that closed before it opened: say what that usually means.
      state.closedBeforeOpen++;
      const token = params.get("token");
      showBanner(token
        ? "The feed refused the connection: the token in ?token= may be wrong (or the server is down)."
        : "The feed refused the connection: if the server requires a token, add ?token=YOUR_TOKEN to this page's address (or the server is down).", true);
      setStatus("refused", `refused, retry in ${(delay / 1000).toFixed(1)} s`);
    } else {
      const why = ev.code === 1012 || ev.code === 1001 ? "server restarting" : `closed (${ev.code})`;
      setStatus("reconnecting", `${why}, retry in ${(delay / 1000).toFixed(1)} s`);
    }
    state.retryTimer = setTimeout(connect, delay);
  }

  function send(op, fields) {
    const id = state.nextId++;
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    ws.send(JSON.stringify({ op, id, ...fields }));
    return new Promise((resolve, reject) => state.pending.set(id, { resolve, reject }));
  }

  async function onWelcome(msg) {
    state.attempt = 0;
    if (msg.epoch !== undefined) {
      if (state.epoch !== null && msg.epoch !== state.epoch) state.restarted = true;
      state.epoch = msg.epoch;
    }
    try {
      const reply = await send("symbols");
      state.names = [];
      for (const s of reply.symbols) { state.names[s.id] = s.symbol; state.ref.set(s.symbol, s); }
      fillUniverse();
      const known = state.watch.filter((s) => state.ref.has(s));
      if (known.length) await send("subscribe", { symbols: known });
      if (!state.selected && known.length) select(known[0]);
      setStatus("live", "live");
      if (state.closedBeforeOpen === 0 && !state.restarted) hideBanner(true);
    } catch (err) {
      if (state.ws) showBanner(`Subscribing failed: ${err.message}`, true);
    }
  }

  // ------------------------------------------------------------------ ingest (no DOM here)
  function onJson(msg) {
    switch (msg.type) {
      case "welcome": onWelcome(msg); break;
      case "snapshot": case "ticks": onJsonTicks(msg.ticks); break;
      case "error": {
        const p = state.pending.get(msg.id);
        if (p) { state.pending.delete(msg.id); p.reject(new Error(msg.message)); }
        break;
      }
      case "heartbeat": break;
      default: {
        const p = state.pending.get(msg.id);
        if (p) { state.pending.delete(msg.id); p.resolve(msg); }
      }
    }
  }

  function onJsonTicks(ticks) {
    const now = Date.now();
    let maxTs = 0;
    for (const t of ticks) {
      const row = state.rows.get(t.symbol);
      if (row) row.update(t.bid, t.ask, t.last, t.volume, t.seq, t.last_size, now);
      if (t.ts > maxTs) maxTs = t.ts;
    }
    meter(ticks.length, now, maxTs / 1e6);
  }

  function onBinary(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < HEADER || dv.getUint8(0) !== 1) {  // a future format: say so, once
      if (!state.badFrame) showBanner("The server sends a binary format this page does not know: reload it.", true);
      state.badFrame = true;
      return;
    }
    const count = Math.min(dv.getUint32(4, true), (buf.byteLength - HEADER) / RECORD);
    const now = Date.now();
    let maxTsMs = 0;
    for (let i = 0, o = HEADER; i < count; i++, o += RECORD) {
      const sym = state.names[dv.getUint16(o + 48, true)];
      const row = sym && state.rows.get(sym);
      const tsMs = u64(dv, o) / 1e6;
      if (tsMs > maxTsMs) maxTsMs = tsMs;
      if (!row) continue;
      row.update(
        dv.getFloat64(o + 16, true), dv.getFloat64(o + 24, true), dv.getFloat64(o + 32, true),
        u64(dv, o + 40), u64(dv, o + 8), dv.getUint32(o + 60, true), now,
      );
    }
    meter(count, now, maxTsMs);
  }

  // A u64 as a Number (exact to 2^53; ns timestamps lose only sub-microsecond digits).
  function u64(dv, o) { return dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 4294967296; }

  function meter(n, nowMs, tsMs) {
    state.ticks += n;
    if (tsMs > 0 && state.lat.length < 2000) state.lat.push(nowMs - tsMs);
  }

  // ------------------------------------------------------------------ watchlist actions
  async function addSymbol(raw) {
    const sym = raw.trim().toUpperCase();
    const msg = document.getElementById("form-msg");
    msg.textContent = "";
    if (!sym) return;
    if (state.watch.includes(sym)) { select(sym); return; }
    if (state.ref.size && !state.ref.has(sym)) { msg.textContent = `${sym} is not in this market`; return; }
    state.watch.push(sym);
    ensureRow(sym);
    saveWatchlist();
    select(sym);
    try {
      await send("subscribe", { symbols: [sym] });
    } catch (err) {
      if (state.ws) { msg.textContent = err.message; dropRow(sym); }  // refused: not in the list
    }
  }

  function dropRow(sym) {
    state.watch = state.watch.filter((s) => s !== sym);
    const row = state.rows.get(sym);
    if (row && row.el) row.el.remove();
    state.rows.delete(sym);
    saveWatchlist();
    if (state.selected === sym) select(state.watch[0] || null);
  }

  async function removeSymbol(sym) {
    dropRow(sym);
    try { await send("unsubscribe", { symbols: [sym] }); } catch (_) { /* resubscribe on reconnect */ }
  }

  function select(sym) {
    state.selected = sym;
    for (const row of state.rows.values()) row.el && row.el.classList.toggle("selected", row.sym === sym);
    state.detailDirty = true;
  }

  // ------------------------------------------------------------------ render (rAF only)
  const $ = (id) => document.getElementById(id);
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
  const big = (x) => (x >= 1e6 ? (x / 1e6).toFixed(2) + "M" : x >= 1e3 ? (x / 1e3).toFixed(1) + "k" : String(x));

  function ensureRow(sym) {
    let row = state.rows.get(sym);
    if (row) return row;
    row = new Row(sym);
    const tr = document.createElement("tr");
    tr.dataset.symbol = sym;
    // Each number sits in a size-contained span: a relayout boundary, so a changed price
    // re-lays out that span only, not the table.
    const num = (cls) => `<td class="${cls}"><span class="v"></span></td>`;
    tr.innerHTML = '<td class="sym"></td>' + ["last", "chg", "bid", "ask", "spread", "vol"].map(num).join("") +
      '<td class="spark"><svg viewBox="0 0 80 22" preserveAspectRatio="none"><path></path></svg></td>' +
      '<td class="rm"><button type="button" title="Remove">×</button></td>';
    tr.querySelector(".sym").textContent = sym;
    tr.addEventListener("click", (ev) => {
      if (ev.target.closest("button")) removeSymbol(sym); else select(sym);
    });
    row.el = tr;
    const v = (cls) => tr.querySelector(`.${cls} .v`);
    row.cells = {
      last: v("last"), chg: v("chg"), bid: v("bid"), ask: v("ask"), spread: v("spread"), vol: v("vol"),
      spark: tr.querySelector("path"),
    };
    $("rows").appendChild(tr);
    state.rows.set(sym, row);
    return row;
  }

  function change(row) {
    const ref = state.ref.get(row.sym);
    if (!ref || !Number.isFinite(row.last)) return [NaN, NaN];
    return [row.last - ref.price, (row.last / ref.price - 1) * 100];
  }

  // Write a cell only when its text or class changes: an unchanged write still costs a
  // style and layout pass, and 50 rows x 7 cells at 60 fps is most of a frame.
  function setText(el, text) {
    const node = el.firstChild;  // update the Text node in place: no node churn, less style work
    if (node && node.nodeType === Node.TEXT_NODE && !node.nextSibling) {
      if (node.nodeValue !== text) node.nodeValue = text;
    } else if (el.textContent !== text) el.textContent = text;
  }
  function setClass(el, cls) { if (el.className !== cls) el.className = cls; }
  const signed = (x) => (x >= 0 ? "+" : "") + fmt(x);

  function paintRow(row) {
    const c = row.cells;
    const [abs, pct] = change(row);
    setText(c.last, fmt(row.last));
    setClass(c.last, "v" + (row.dir > 0 ? " up" : row.dir < 0 ? " down" : ""));
    setText(c.chg, Number.isFinite(pct) ? `${signed(abs)} (${signed(pct)}%)` : "–");
    setClass(c.chg, "v" + (abs > 0 ? " up" : abs < 0 ? " down" : ""));
    setText(c.bid, fmt(row.bid));
    setText(c.ask, fmt(row.ask));
    setText(c.spread, fmt(row.ask - row.bid));
    setText(c.vol, big(row.volume));
    row.dirty = false;
  }

  function colors() {
    const s = getComputedStyle(document.documentElement);
    return { up: s.getPropertyValue("--up"), down: s.getPropertyValue("--down"),
      accent: s.getPropertyValue("--accent"), muted: s.getPropertyValue("--muted"),
      line: s.getPropertyValue("--line"), band: s.getPropertyValue("--band") };
  }
  let palette = null;
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    palette = null;
    for (const row of state.rows.values()) row.sparkDirty = true;
    state.detailDirty = true;
  });

  function drawLine(ctx, ys, x0, y0, w, h, lo, hi, color, lineWidth) {
    const n = ys.length, span = hi - lo || 1;
    if (n < 2) return;
    ctx.beginPath();
    let started = false;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(ys[i])) continue;
      const x = x0 + (i / (n - 1)) * w, y = y0 + h - ((ys[i] - lo) / span) * h;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    }
    ctx.strokeStyle = color; ctx.lineWidth = lineWidth; ctx.stroke();
  }

  function range(ys) {
    let lo = Infinity, hi = -Infinity;
    for (const y of ys) if (Number.isFinite(y)) { if (y < lo) lo = y; if (y > hi) hi = y; }
    return [lo, hi];
  }

  // Sparklines are SVG paths, not canvases: 50 canvases are 50 composited layers to rebuild
  // every frame, while a path is plain paint (measured: most of the frame time in Chromium).
  function paintSpark(row) {
    const ys = row.series(SPARK_POINTS);
    const [lo, hi] = range(ys);
    const n = ys.length, span = hi - lo || 1;
    let d = "";
    for (let i = 0; i < n; i++) {
      d += `${i ? "L" : "M"}${(1 + (i / (n - 1)) * 78).toFixed(1)} ${(20 - ((ys[i] - lo) / span) * 18).toFixed(1)}`;
    }
    const path = row.cells.spark;
    path.setAttribute("d", n > 1 ? d : "");
    path.setAttribute("class", n > 1 && ys[n - 1] < ys[0] ? "down" : "up");
    row.sparkDirty = false;
  }

  function paintDetailText() {
    const row = state.selected && state.rows.get(state.selected);
    const ref = row && state.ref.get(row.sym);
    setText($("detail-sym"), row ? row.sym : "–");
    setText($("detail-name"), ref ? ref.name : "");
    setText($("detail-sector"), ref ? ref.sector : "–");
    if (!row) return;
    const [abs, pct] = change(row);
    setText($("detail-last"), fmt(row.last));
    setText($("detail-change"), Number.isFinite(pct) ? `${signed(abs)} (${signed(pct)}%) since open` : "");
    setClass($("detail-change"), abs > 0 ? "up" : abs < 0 ? "down" : "muted");
    setText($("detail-bid"), fmt(row.bid));
    setText($("detail-ask"), fmt(row.ask));
    setText($("detail-size"), row.lastSize.toLocaleString());
    setText($("detail-volume"), row.volume.toLocaleString());
    setText($("detail-seq"), row.seq.toLocaleString());
  }

  // The chart's pixel size, kept by a ResizeObserver: reading clientWidth in a frame after
  // writing text would force a synchronous layout every frame.
  const chartSize = { w: 0, h: 0 };

  function paintChart() {
    const row = state.selected && state.rows.get(state.selected);
    const cv = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(chartSize.w * dpr), h = Math.round(chartSize.h * dpr);
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
    const ctx = cv.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!row) return;
    const ys = row.series(HISTORY);
    let [lo, hi] = range(ys);
    if (ys.length < 2) return;
    const pad = (hi - lo) * 0.1 || Math.max(lo * 1e-4, 0.01);
    lo -= pad; hi += pad;
    const axis = 64 * dpr, top = 8 * dpr, bottom = 8 * dpr;
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.fillStyle = palette.muted; ctx.strokeStyle = palette.line; ctx.lineWidth = 1;
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4, y = top + (h - top - bottom) * (1 - k / 4);
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w - axis, y); ctx.stroke();
      ctx.fillText(v.toFixed(2), w - axis + 6 * dpr, y + 4 * dpr);
    }
    const plotW = w - axis, plotH = h - top - bottom;
    // Area under the line, then the line itself.
    ctx.beginPath();
    ctx.moveTo(0, top + plotH);
    for (let i = 0; i < ys.length; i++) {
      ctx.lineTo((i / (ys.length - 1)) * plotW, top + plotH - ((ys[i] - lo) / (hi - lo)) * plotH);
    }
    ctx.lineTo(plotW, top + plotH); ctx.closePath(); ctx.fillStyle = palette.band; ctx.fill();
    drawLine(ctx, ys, 0, top, plotW, plotH, lo, hi, palette.accent, 1.5 * dpr);
    ctx.fillStyle = palette.muted;
    ctx.fillText(`mid price, last ${Math.round((ys.length * SAMPLE_MS) / 1000)} s`, 4 * dpr, h - 2 * dpr);
  }

  function paintMeters(now) {
    const dt = (now - state.lastMeter) / 1000;
    if (dt < 0.5) return;
    $("rate").textContent = Math.round(state.ticks / dt).toLocaleString();
    if (state.lat.length) {
      const sorted = state.lat.sort((a, b) => a - b);
      $("latency").textContent = `${sorted[sorted.length >> 1].toFixed(1)} ms`;
    }
    state.ticks = 0; state.lat = []; state.lastMeter = now;
  }

  function frame(now) {
    if (!palette) palette = colors();
    // Each frame repaints at most a sixth of the rows (round robin): every row still shows
    // its latest prices within 100 ms at 60 fps, and no frame does all 50 at once.
    const n = state.watch.length, budget = Math.max(ROWS_PER_FRAME_MIN, Math.ceil(n / 6));
    let painted = 0, chartDirty = state.detailDirty;
    for (let k = 0; k < n && painted < budget; k++) {
      const row = ensureRow(state.watch[(state.cursor + k) % n]);
      if (row.dirty) { paintRow(row); painted++; }
      if (row.sparkDirty) { paintSpark(row); chartDirty ||= row.sym === state.selected; }
      if (painted === budget) state.cursor = (state.cursor + k + 1) % n;
    }
    if (now - state.detailPainted >= SAMPLE_MS || state.detailDirty) {
      paintDetailText();
      state.detailPainted = now;
    }
    if (chartDirty) paintChart();
    state.detailDirty = false;
    if (state.restarted) {
      state.restarted = false;
      showBanner("The server restarted: prices and volumes start over from a new session. The page reconnected by itself.", false);
    }
    paintMeters(now);
    requestAnimationFrame(frame);
  }

  // ------------------------------------------------------------------ status and banner
  function setStatus(kind, text) {
    const el = $("status");
    el.dataset.state = kind;
    el.textContent = text;
  }

  let bannerIsError = false;
  function showBanner(text, isError) {
    const b = $("banner");
    $("banner-text").textContent = text;
    b.classList.toggle("error", isError);
    b.dataset.kind = isError ? "error" : "restart";
    b.hidden = false;
    bannerIsError = isError;
  }
  function hideBanner(onlyErrors) {
    if (onlyErrors && !bannerIsError) return;
    $("banner").hidden = true;
  }

  function fillUniverse() {
    const list = $("universe");
    list.replaceChildren(...[...state.ref.keys()].map((s) => Object.assign(document.createElement("option"), { value: s })));
  }

  // ------------------------------------------------------------------ start
  document.addEventListener("DOMContentLoaded", () => {
    $("add-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      addSymbol($("add-input").value);
      $("add-input").value = "";
    });
    $("banner-close").addEventListener("click", () => hideBanner(false));
    $("feed-url").textContent = "Feed: " + feedUrl().replace(/token=[^&]*/, "token=…");
    new ResizeObserver(([entry]) => {
      chartSize.w = entry.contentRect.width; chartSize.h = entry.contentRect.height;
      state.detailDirty = true;
    }).observe($("chart"));
    for (const sym of state.watch) ensureRow(sym);
    select(state.watch[0] || null);
    connect();
    requestAnimationFrame(frame);
  });
})();
