// tickwire's live page, the view. The feed lives in a Worker (worker.js: the WebSocket, decoding,
// reconnects and resume); this thread gets at most one compact update per animation frame and
// paints on requestAnimationFrame only. Measured in headless Chromium, the cost of a frame is
// Blink's style, layout, paint and commit, mostly per frame that writes anything, not per cell:
// so only every third frame writes the DOM, a slice of the rows each (changed cells of visible
// rows only). Measured (same machine, interleaved): main thread busy ~20%, writing every other
// frame ~35%, every frame (the page before) ~58%.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const DEFAULT_SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "JPM", "XOM", "SPY"];
  const HISTORY = 600;          // points per symbol: 60 s at one point per 100 ms
  const SAMPLE_MS = 100;        // chart resolution; later updates in a bucket overwrite it
  const FRAME_STRIDE = 3;       // write the DOM every third frame...
  const SLICES = 6;             // ...a sixth of the rows each time: each row every 18 frames
  const SPARK_EVERY = 5;        // a sparkline point per 5 samples (500 ms): 60 points in 30 s
  const SPARK_POINTS = 60;
  const FIELDS = 7;             // per symbol in a worker update (worker.js)

  // ------------------------------------------------------------------ state (this tab only)
  const state = {
    names: [], ref: new Map(), byId: [],  // symbol id -> name; name -> reference; id -> Row
    rows: new Map(),                      // name -> Row
    watch: initialWatchlist(),
    selected: null, nextReq: 1, replies: new Map(),
    pulling: false, paintTick: 0, chartBucket: -1, detailDirty: true, restarted: false,
    rate: 0, latency: NaN, metersShown: "", refused: false,
    book: null, bookDirty: false,  // the selected symbol's book (worker.js keeps it)
    halted: new Map(),  // a market scenario's halted symbols: name -> reason
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
      this.lastSize = 0; this.dir = 0;
      this.hist = new Float64Array(HISTORY).fill(NaN);  // mid price ring
      this.head = -1; this.bucket = -1; this.filled = 0;
      this.dirty = true; this.sparkDirty = true; this.visible = true;
      this.spark = new Float64Array(SPARK_POINTS);     // reused: no allocation per paint
      this.el = null; this.cells = null;
    }
    update(bid, ask, last, volume, seq, lastSize, nowMs) {
      if (last !== this.last && !Number.isNaN(this.last)) this.dir = last > this.last ? 1 : -1;
      this.bid = bid; this.ask = ask; this.last = last; this.volume = volume;
      this.seq = seq; this.lastSize = lastSize; this.dirty = true;
      const bucket = Math.floor(nowMs / SAMPLE_MS);
      if (bucket !== this.bucket) {
        this.bucket = bucket; this.head = (this.head + 1) % HISTORY;
        if (this.filled < HISTORY) this.filled++;
        if (bucket % SPARK_EVERY === 0) this.sparkDirty = true;
      }
      this.hist[this.head] = (bid + ask) / 2;
    }
    at(back) { return this.hist[(this.head - back + HISTORY) % HISTORY]; }  // back < filled
  }

  // ------------------------------------------------------------------ the feed (a Worker)
  const worker = new Worker(document.querySelector("script[data-worker]").dataset.worker);

  worker.onerror = (ev) => {  // a bug in worker.js: say so (the console has the details)
    showBanner(`The page's feed worker failed (${ev.message}): reload the page.`, true);
  };

  worker.onmessage = ({ data }) => {
    switch (data.t) {
      case "update": onUpdate(data); break;
      case "status": setStatus(data.kind, data.text); break;
      case "symbols": onSymbols(data.symbols); break;
      case "live": onLive(data); break;
      case "refused": onRefused(); break;
      case "banner": showBanner(data.text, data.error); break;
      case "halt": setHalted(data.symbol, data.halted, data.reason); break;
      case "halted": {  // as the server stands now (each connection)
        for (const sym of [...state.halted.keys()]) setHalted(sym, false);
        for (const sym of data.symbols) setHalted(sym, true, "");
        break;
      }
      case "scenarios": showScenarios(data.active); break;
      case "reply": {
        const done = state.replies.get(data.id);
        state.replies.delete(data.id);
        if (done) done(data);
        break;
      }
    }
  };

  // A halted symbol's row says HALTED beside its name until it trades again.
  function setHalted(sym, halted, reason) {
    if (halted) state.halted.set(sym, reason || "halted"); else state.halted.delete(sym);
    const row = state.rows.get(sym);
    if (!row) return;
    row.el.classList.toggle("halted", halted);
    const badge = row.el.querySelector(".halt");
    badge.hidden = !halted;
    badge.title = halted && reason ? `Trading halted (${reason})` : "Trading halted";
  }

  function showScenarios(active) {  // the market scenarios the server plays now
    const el = $("scenario");
    el.hidden = !active.length;
    el.textContent = active.length ? `scenario: ${active.join(", ")}` : "";
  }

  function request(op, symbols) {
    const id = state.nextReq++;
    worker.postMessage({ t: op, id, symbols });
    return new Promise((resolve) => state.replies.set(id, resolve));
  }

  function onUpdate(msg) {
    state.pulling = false;
    const q = msg.quotes, now = Date.now();
    for (let o = 0; o < q.length; o += FIELDS) {
      const row = state.byId[q[o]];
      if (row) row.update(q[o + 1], q[o + 2], q[o + 3], q[o + 4], q[o + 5], q[o + 6], now);
    }
    state.rate = msg.rate; state.latency = msg.latency;
    if (msg.restarted) state.restarted = true;
    if (msg.resumed) showResumed(msg.resumed);
    if (msg.book) { state.book = msg.book; state.bookDirty = true; }
  }

  function onSymbols(symbols) {
    state.names = [];
    for (const s of symbols) { state.names[s.id] = s.symbol; state.ref.set(s.symbol, withUnits(s)); }
    $("universe").replaceChildren(...symbols.map((s) => Object.assign(document.createElement("option"), { value: s.symbol })));
    indexRows();
  }

  function onLive(msg) {
    state.refused = false;
    if (msg.restarted) state.restarted = true;
    else if (bannerIsError) hideBanner();
    if (msg.resumed) showResumed(msg.resumed);
    const el = $("status");
    if (!msg.resumed) {
      for (const k of ["recovered", "missed", "replayed"]) delete el.dataset[k];
      el.removeAttribute("title");
    }
    setStatus("live", msg.resumed && msg.resumed.recovered ? "live, resumed" : "live");
    if (!state.selected && state.watch.length) select(state.watch[0]);
  }

  // What the last reconnect recovered: `missed` (the server's count), `replayed` (received).
  function showResumed(r) {
    const el = $("status");
    el.dataset.recovered = String(r.recovered);
    el.dataset.missed = String(r.missed);
    el.dataset.replayed = String(r.applied);
    el.title = r.recovered
      ? `Reconnected and resumed: ${r.missed.toLocaleString()} missed updates recovered`
      : "Reconnected: the missed updates were out of the server's history; showing a fresh snapshot";
  }

  function onRefused() {
    const token = params.get("token");
    showBanner(token
      ? "The feed refused the connection: the token in ?token= may be wrong (or the server is down or restarting)."
      : "The feed refused the connection: if the server requires a token, add ?token=YOUR_TOKEN to this page's address (or the server is down or restarting).", true);
  }

  function indexRows() {
    state.byId = [];
    for (const row of state.rows.values()) {
      const ref = state.ref.get(row.sym);
      if (ref) state.byId[ref.id] = row;
    }
  }

  // ------------------------------------------------------------------ watchlist actions
  async function addSymbol(raw) {
    const sym = raw.trim().toUpperCase();
    const msg = $("form-msg");
    msg.textContent = "";
    if (!sym) return;
    if (state.watch.includes(sym)) { select(sym); return; }
    if (state.ref.size && !state.ref.has(sym)) { msg.textContent = `${sym} is not in this market`; return; }
    state.watch.push(sym);
    ensureRow(sym);
    indexRows();
    saveWatchlist();
    select(sym);
    const reply = await request("subscribe", [sym]);
    if (!reply.ok && reply.connected) { msg.textContent = reply.message; dropRow(sym); }
  }

  function dropRow(sym) {
    state.watch = state.watch.filter((s) => s !== sym);
    const row = state.rows.get(sym);
    if (row && row.el) { visibility.unobserve(row.el); row.el.remove(); }
    state.rows.delete(sym);
    indexRows();
    saveWatchlist();
    if (state.selected === sym) select(state.watch[0] || null);
  }

  function removeSymbol(sym) {
    dropRow(sym);
    request("unsubscribe", [sym]);  // if not connected, the next connection subscribes without it
  }

  function select(sym) {
    if (state.selected !== sym) worker.postMessage({ t: "book", symbol: sym });
    state.selected = sym;
    for (const row of state.rows.values()) row.el.classList.toggle("selected", row.sym === sym);
    state.detailDirty = true;
  }

  // ------------------------------------------------------------------ render (rAF only)
  const $ = (id) => document.getElementById(id);
  const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "–");
  const big = (x) => (x >= 1e6 ? (x / 1e6).toFixed(2) + "M" : x >= 1e3 ? (x / 1e3).toFixed(1) + "k" : String(x));

  // Sizes arrive as counts of the symbol's size_unit (1 share, or a lot: 0.00001 BTC); shown,
  // they are the asset's quantity, exact: integers scaled by the unit's decimals, never a float
  // product (210 lots of 0.00001 are "0.00210"). Prices show their tick's decimals (at least 2).
  function places(unit) {
    for (let d = 0; d <= 12; d++) {
      if (Math.abs(Math.round(unit * 10 ** d) / 10 ** d - unit) <= 1e-15 * Math.max(1, unit)) return d;
    }
    return 12;
  }
  function withUnits(ref) {
    const unit = ref.size_unit > 0 ? ref.size_unit : 1;
    const d = places(unit);
    return Object.assign(ref, {
      sizePlaces: d, sizeScaled: BigInt(Math.round(unit * 10 ** d)), sizeUnit: unit,
      pricePlaces: Math.max(2, places(ref.tick_size > 0 ? ref.tick_size : 0.01)),
    });
  }
  function qty(units, ref) {  // the exact quantity, e.g. "0.00210"; shares as before: 1,234
    if (!ref || !ref.sizePlaces) return (ref ? units * ref.sizeUnit : units).toLocaleString();
    const d = ref.sizePlaces;
    const text = (BigInt(Math.round(units)) * ref.sizeScaled).toString().padStart(d + 1, "0");
    return `${text.slice(0, -d)}.${text.slice(-d)}`;
  }
  function bigQty(units, ref) {  // the table's volume: compact, exact below 1,000 of the asset
    if (!ref || !ref.sizePlaces) return big(ref ? units * ref.sizeUnit : units);
    const value = units * ref.sizeUnit;
    return value >= 1e3 ? big(Math.round(value)) : qty(units, ref);
  }
  const priceOf = (row) => { const r = state.ref.get(row.sym); return r ? r.pricePlaces : 2; };

  // Rows off screen are not painted (they stay dirty until they scroll in).
  const visibility = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const row = state.rows.get(e.target.dataset.symbol);
      if (row) row.visible = e.isIntersecting;
    }
  });

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
      '<td class="spark"><svg width="80" height="22"><path></path></svg></td>' +
      '<td class="rm"><button type="button" title="Remove">×</button></td>';
    tr.querySelector(".sym").textContent = sym;
    const badge = Object.assign(document.createElement("span"), { className: "halt", textContent: "HALTED", hidden: true });
    tr.querySelector(".sym").append(" ", badge);
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
    visibility.observe(tr);
    state.rows.set(sym, row);
    if (state.halted.has(sym)) setHalted(sym, true, state.halted.get(sym));
    return row;
  }

  function change(row) {
    const ref = state.ref.get(row.sym);
    if (!ref || !Number.isFinite(row.last)) return [NaN, NaN];
    return [row.last - ref.price, (row.last / ref.price - 1) * 100];
  }

  // Write a cell only when its text or class changes: an unchanged write still costs a
  // style and layout pass.
  function setText(el, text) {
    const node = el.firstChild;  // update the Text node in place: no node churn, less style work
    if (node && node.nodeType === Node.TEXT_NODE && !node.nextSibling) {
      if (node.nodeValue !== text) node.nodeValue = text;
    } else if (el.textContent !== text) el.textContent = text;
  }
  function setClass(el, cls) { if (el.className !== cls) el.className = cls; }
  const signed = (x, d = 2) => (x >= 0 ? "+" : "") + fmt(x, d);

  function paintRow(row) {
    const c = row.cells;
    const [abs, pct] = change(row);
    const d = priceOf(row);
    setText(c.last, fmt(row.last, d));
    setClass(c.last, "v" + (row.dir > 0 ? " up" : row.dir < 0 ? " down" : ""));
    setText(c.chg, Number.isFinite(pct) ? `${signed(abs, d)} (${signed(pct)}%)` : "–");
    setClass(c.chg, "v" + (abs > 0 ? " up" : abs < 0 ? " down" : ""));
    setText(c.bid, fmt(row.bid, d));
    setText(c.ask, fmt(row.ask, d));
    setText(c.spread, fmt(row.ask - row.bid, d));
    setText(c.vol, bigQty(row.volume, state.ref.get(row.sym)));
    row.dirty = false;
  }

  function colors() {
    const s = getComputedStyle(document.documentElement);
    return { accent: s.getPropertyValue("--accent"), muted: s.getPropertyValue("--muted"),
      line: s.getPropertyValue("--line"), band: s.getPropertyValue("--band") };
  }
  let palette = null;
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    palette = null;
    state.detailDirty = true;
  });

  function range(ys, n) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { const y = ys[i]; if (y < lo) lo = y; if (y > hi) hi = y; }
    return [lo, hi];
  }

  // Sparklines are SVG paths, not canvases: 50 canvases are 50 composited layers, while a path
  // is plain paint (and with no viewBox, no transform: no paint chunk of its own). One point
  // per 500 ms (60 in 30 s, in an 80 px wide box).
  function paintSpark(row) {
    const ys = row.spark;
    const n = Math.min(SPARK_POINTS, Math.ceil(row.filled / SPARK_EVERY));
    for (let i = 0; i < n; i++) ys[i] = row.at((n - 1 - i) * SPARK_EVERY);
    const [lo, hi] = range(ys, n);
    const span = hi - lo || 1;
    let d = "";
    for (let i = 0; i < n; i++) {
      d += `${i ? "L" : "M"}${(1 + (i / (n - 1)) * 78).toFixed(1)} ${(20 - ((ys[i] - lo) / span) * 18).toFixed(1)}`;
    }
    const path = row.cells.spark;
    path.setAttribute("d", n > 1 ? d : "");
    const cls = n > 1 && ys[n - 1] < ys[0] ? "down" : "up";
    if (path.getAttribute("class") !== cls) path.setAttribute("class", cls);  // SVG: no className
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
    const d = priceOf(row);
    setText($("detail-last"), fmt(row.last, d));
    setText($("detail-change"), Number.isFinite(pct) ? `${signed(abs, d)} (${signed(pct)}%) since open` : "");
    setClass($("detail-change"), abs > 0 ? "up" : abs < 0 ? "down" : "muted");
    setText($("detail-bid"), fmt(row.bid, d));
    setText($("detail-ask"), fmt(row.ask, d));
    setText($("detail-size"), qty(row.lastSize, ref));
    setText($("detail-volume"), qty(row.volume, ref));
    setText($("detail-seq"), row.seq.toLocaleString());
  }

  // The chart's pixel size, kept by a ResizeObserver: reading clientWidth in a frame after
  // writing text would force a synchronous layout every frame.
  const chartSize = { w: 0, h: 0 };
  const chartYs = new Float64Array(HISTORY);

  function paintChart() {
    const row = state.selected && state.rows.get(state.selected);
    const cv = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(chartSize.w * dpr), h = Math.round(chartSize.h * dpr);
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
    const ctx = cv.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    if (!row || row.filled < 2) return;
    const n = row.filled, ys = chartYs;
    for (let i = 0; i < n; i++) ys[i] = row.at(n - 1 - i);
    let [lo, hi] = range(ys, n);
    const pad = (hi - lo) * 0.1 || Math.max(lo * 1e-4, 0.01);
    lo -= pad; hi += pad;
    const axis = 64 * dpr, top = 8 * dpr, bottom = 8 * dpr;
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.fillStyle = palette.muted; ctx.strokeStyle = palette.line; ctx.lineWidth = 1;
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4, y = top + (h - top - bottom) * (1 - k / 4);
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w - axis, y); ctx.stroke();
      ctx.fillText(v.toFixed(priceOf(row)), w - axis + 6 * dpr, y + 4 * dpr);
    }
    const plotW = w - axis, plotH = h - top - bottom;
    const x = (i) => (i / (n - 1)) * plotW, y = (i) => top + plotH - ((ys[i] - lo) / (hi - lo)) * plotH;
    ctx.beginPath();  // the line, then the area under it
    for (let i = 0; i < n; i++) ctx.lineTo(x(i), y(i));
    ctx.strokeStyle = palette.accent; ctx.lineWidth = 1.5 * dpr; ctx.stroke();
    ctx.lineTo(plotW, top + plotH); ctx.lineTo(0, top + plotH); ctx.closePath();
    ctx.fillStyle = palette.band; ctx.fill();
    ctx.fillStyle = palette.muted;
    ctx.fillText(`mid price, last ${Math.round((n * SAMPLE_MS) / 1000)} s`, 4 * dpr, h - 2 * dpr);
  }

  // The depth ladder: the top levels a side, best first, a bar per level's size (hidden when
  // the server has no books). Its dataset says which book it shows (symbol, book seq, resyncs).
  const LADDER_ROWS = 10;
  const IMBALANCE_LEVELS = 5;
  function paintLadder() {
    state.bookDirty = false;
    const b = state.book, el = $("ladder");
    el.hidden = !b || !b.depth;
    if (el.hidden) return;
    el.dataset.symbol = b.symbol || ""; el.dataset.seq = String(b.seq);
    el.dataset.resyncs = String(b.resyncs);
    const body = $("ladder-rows");
    while (body.children.length < LADDER_ROWS) {
      const tr = document.createElement("tr");
      tr.innerHTML = '<td class="bar b"><div></div></td><td class="bs"></td><td class="bid"></td>' +
        '<td class="ask"></td><td class="as"></td><td class="bar a"><div></div></td>';
      body.appendChild(tr);
    }
    const d = b.decimals ?? 2;
    let peak = 1;
    for (const [, s] of b.bids.concat(b.asks)) if (s > peak) peak = s;
    for (let k = 0; k < LADDER_ROWS; k++) {
      const c = body.children[k].children, bid = b.bids[k], ask = b.asks[k];
      setText(c[1], bid ? big(bid[1]) : ""); setText(c[2], bid ? fmt(bid[0], d) : "");
      setText(c[3], ask ? fmt(ask[0], d) : ""); setText(c[4], ask ? big(ask[1]) : "");
      c[0].firstChild.style.width = bid ? `${(bid[1] / peak) * 100}%` : "0";
      c[5].firstChild.style.width = ask ? `${(ask[1] / peak) * 100}%` : "0";
    }
    const sum = (side) => side.slice(0, IMBALANCE_LEVELS).reduce((a, l) => a + l[1], 0);
    const bs = sum(b.bids), as = sum(b.asks);
    setText($("ladder-spread"), b.bids.length && b.asks.length ? fmt(b.asks[0][0] - b.bids[0][0], d) : "–");
    setText($("ladder-imb"), bs + as ? `${Math.round((bs / (bs + as)) * 100)}% bid` : "–");
  }

  function paintMeters() {
    const text = state.rate.toLocaleString() + "|" + (Number.isFinite(state.latency) ? `${state.latency.toFixed(1)} ms` : "–");
    if (text === state.metersShown) return;
    state.metersShown = text;
    const [rate, latency] = text.split("|");
    setText($("rate"), rate);
    setText($("latency"), latency);
  }

  // Every third frame writes a sixth of the rows (whichever changed and are visible), so each
  // row shows its latest prices within 18 frames (~300 ms at 60 fps, about as fast as anyone
  // reads a changing number), no frame writes many rows, and the other frames write nothing at
  // all (a frame that writes costs its fixed style, paint and commit work, whatever the number
  // of cells).
  function frame(now) {
    requestAnimationFrame(frame);
    if (!state.pulling) { state.pulling = true; worker.postMessage({ t: "pull" }); }
    const tick = state.paintTick++;
    if (tick % FRAME_STRIDE && !state.detailDirty) return;
    if (!palette) palette = colors();
    const slice = (tick / FRAME_STRIDE) % SLICES | 0;
    let chartDirty = state.detailDirty;
    for (let i = slice; i < state.watch.length; i += SLICES) {
      const row = state.rows.get(state.watch[i]);
      if (!row || !row.visible) continue;
      if (row.dirty) paintRow(row);
      if (row.sparkDirty) paintSpark(row);
    }
    const sel = state.selected && state.rows.get(state.selected);
    if (slice === 0 || chartDirty) {  // the detail pane is one more slice
      paintDetailText();
      if (sel && sel.bucket !== state.chartBucket) chartDirty = true;
      if (chartDirty) { paintChart(); state.chartBucket = sel ? sel.bucket : -1; }
      paintMeters();
    }
    if (state.bookDirty) paintLadder();
    state.detailDirty = false;
    if (state.restarted) {
      state.restarted = false;
      showBanner("The server restarted: prices and volumes start over from a new session. The page reconnected by itself.", false);
    }
  }

  // ------------------------------------------------------------------ status and banner
  function setStatus(kind, text) {
    const el = $("status");
    el.dataset.state = kind;
    setText(el, text);
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
  function hideBanner() { $("banner").hidden = true; bannerIsError = false; }

  // ------------------------------------------------------------------ start
  document.addEventListener("DOMContentLoaded", () => {
    $("add-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      addSymbol($("add-input").value);
      $("add-input").value = "";
    });
    $("banner-close").addEventListener("click", hideBanner);
    $("feed-url").textContent = "Feed: " + feedUrl().replace(/token=[^&]*/, "token=…");
    new ResizeObserver(([entry]) => {
      chartSize.w = entry.contentRect.width; chartSize.h = entry.contentRect.height;
      state.detailDirty = true;
    }).observe($("chart"));
    for (const sym of state.watch) ensureRow(sym);
    select(state.watch[0] || null);
    worker.postMessage({ t: "start", url: feedUrl(), watch: state.watch });
    requestAnimationFrame(frame);
  });
})();
