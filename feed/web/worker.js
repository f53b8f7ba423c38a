// tickwire's page, the feed side: a dedicated Worker owns the WebSocket. It decodes every frame,
// keeps the latest quote per symbol and sends the page one compact update per animation frame
// (when the page asks), so the page's main thread does no per-message work at all. It also
// reconnects with backoff and resumes where it was (README, "Resume after a reconnect").
"use strict";

const RECORD = 64;           // binary record (README, "Binary encoding")
const FIELDS = 7;            // per changed symbol in an update: id, bid, ask, last, volume, seq, size
const BACKOFF_MAX_MS = 10000;

const feed = {
  url: "", ws: null, opened: false, attempt: 0, refused: 0, nextId: 1, pending: new Map(),
  epoch: null, offset: -1, watch: [], names: [], ids: new Map(),
  // Latest quote per symbol id (grown as the universe is learnt), and which ids changed.
  bid: new Float64Array(0), ask: new Float64Array(0), last: new Float64Array(0),
  volume: new Float64Array(0), seq: new Float64Array(0), size: new Float64Array(0),
  changed: new Uint8Array(0), changedIds: [],
  wanted: false,             // the page asked for an update and has not had it yet
  ticks: 0, lat: new Float64Array(512), latN: 0, meterAt: performance.now(), rate: 0, latency: NaN,
  restarted: false, resumed: null, resumedDirty: false, replaying: 0,
};

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const status = (kind, text) => post({ t: "status", kind, text });

self.onmessage = ({ data }) => {
  switch (data.t) {
    case "start": feed.url = data.url; feed.watch = data.watch.slice(); connect(); break;
    case "pull": feed.wanted = true; flush(); break;
    case "book": bookWant(data.symbol); break;
    case "subscribe": case "unsubscribe": {
      const syms = data.symbols;
      if (data.t === "subscribe") for (const s of syms) { if (!feed.watch.includes(s)) feed.watch.push(s); }
      else feed.watch = feed.watch.filter((s) => !syms.includes(s));
      request(data.t, { symbols: syms }).then(
        () => post({ t: "reply", id: data.id, ok: true }),
        (err) => {
          if (data.t === "subscribe" && feed.ws) feed.watch = feed.watch.filter((s) => !syms.includes(s));
          post({ t: "reply", id: data.id, ok: false, message: err.message, connected: !!feed.ws });
        });
      break;
    }
  }
};

// ------------------------------------------------------------------ connection
function connect() {
  feed.opened = false;
  status(feed.refused ? "refused" : "connecting", feed.refused ? "refused, retrying" : "connecting");
  let ws;
  try {
    ws = new WebSocket(feed.url, ["tickwire.v1.binary", "tickwire.v1"]);
  } catch (err) {
    post({ t: "banner", text: `Cannot open the feed: ${err.message}`, error: true });
    return;
  }
  ws.binaryType = "arraybuffer";
  feed.ws = ws;
  ws.onopen = () => { feed.opened = true; feed.refused = 0; };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onJson(JSON.parse(ev.data));
    else onBinary(ev.data);
  };
  ws.onclose = (ev) => onClose(ws, ev);
}

function onClose(ws, ev) {
  if (feed.ws !== ws) return;
  feed.ws = null;
  for (const { reject } of feed.pending.values()) reject(new Error("connection closed"));
  feed.pending.clear();
  const delay = Math.min(BACKOFF_MAX_MS, 250 * 2 ** feed.attempt) * (0.5 + Math.random() / 2);
  feed.attempt++;
  const secs = (delay / 1000).toFixed(1);
  if (!feed.opened) {
    // A refused upgrade (HTTP 401 for a wrong token, 503 while the server drains) reaches a
    // browser only as a WebSocket that closed before it opened.
    feed.refused++;
    post({ t: "refused" });
    status("refused", `refused, retry in ${secs} s`);
  } else {
    const why = ev.code === 1012 || ev.code === 1001 ? "server restarting" : `closed (${ev.code})`;
    status("reconnecting", `${why}, retry in ${secs} s`);
  }
  setTimeout(connect, delay);
}

function request(op, fields) {
  const ws = feed.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
  const id = feed.nextId++;
  ws.send(JSON.stringify({ op, id, ...fields }));
  return new Promise((resolve, reject) => feed.pending.set(id, { resolve, reject }));
}

async function onWelcome(msg) {
  feed.attempt = 0;
  feed.resumed = null; feed.replaying = 0;
  const sameRun = feed.epoch !== null && msg.epoch === feed.epoch;
  if (feed.epoch !== null && msg.epoch !== undefined && msg.epoch !== feed.epoch) {
    feed.restarted = true;
    feed.seq.fill(0);  // a new run numbers every symbol from the start again
  }
  const resumeFrom = sameRun && feed.offset >= 0 ? { epoch: feed.epoch, offset: feed.offset } : true;
  if (msg.epoch !== undefined) feed.epoch = msg.epoch;
  post({ t: "scenarios", active: msg.scenarios || [] });
  if (msg.book_depth !== book.depth) {  // 0 or absent: no books, the page shows none
    book.depth = msg.book_depth || 0; book.dirty = true;
    const symbol = book.symbol; book.symbol = null; bookWant(symbol);
  }
  try {
    const reply = await request("symbols");
    learnUniverse(reply.symbols);
    post({ t: "halted", symbols: reply.halted || [] });  // a server playing a scenario says
    const known = feed.watch.filter((s) => feed.ids.has(s));
    if (known.length) {
      // `resume: true` asks for stream offsets; a position asks for what was missed since.
      const ack = await request("subscribe", { symbols: known, resume: resumeFrom });
      if (resumeFrom !== true) {
        feed.resumed = { recovered: !!ack.recovered, missed: ack.missed || 0, applied: 0 };
        feed.resumedDirty = true;
        feed.replaying = ack.recovered ? ack.missed || 0 : 0;
      }
    }
    post({ t: "live", restarted: feed.restarted, resumed: feed.resumed });
    feed.restarted = false;
  } catch (err) {
    if (feed.ws) post({ t: "banner", text: `Subscribing failed: ${err.message}`, error: true });
  }
}

function learnUniverse(symbols) {
  let n = 0;
  for (const s of symbols) n = Math.max(n, s.id + 1);
  if (n > feed.bid.length) {
    const grow = (a, fill) => { const b = new Float64Array(n).fill(fill); b.set(a); return b; };
    feed.bid = grow(feed.bid, NaN); feed.ask = grow(feed.ask, NaN); feed.last = grow(feed.last, NaN);
    feed.volume = grow(feed.volume, 0); feed.seq = grow(feed.seq, 0); feed.size = grow(feed.size, 0);
    const changed = new Uint8Array(n); changed.set(feed.changed); feed.changed = changed;
  }
  feed.names = [];
  for (const s of symbols) { feed.names[s.id] = s.symbol; feed.ids.set(s.symbol, s.id); }
  post({ t: "symbols", symbols });
}

// ------------------------------------------------------------------ ingest
function onJson(msg) {
  switch (msg.type) {
    case "welcome": onWelcome(msg); break;
    case "snapshot": case "ticks": {
      const now = Date.now();
      let maxTs = 0;
      for (const t of msg.ticks) {
        const id = feed.ids.get(t.symbol);
        if (id !== undefined) apply(id, t.bid, t.ask, t.last, t.volume, t.seq, t.last_size);
        if (t.ts > maxTs) maxTs = t.ts;
      }
      if (msg.offset !== undefined) feed.offset = msg.offset;
      meter(msg.ticks.length, now, maxTs / 1e6);
      break;
    }
    case "error": {
      const p = feed.pending.get(msg.id);
      if (p) { feed.pending.delete(msg.id); p.reject(new Error(msg.message)); }
      break;
    }
    case "heartbeat": break;
    // A market scenario: a symbol halted or trades again; a scenario started or ended.
    case "status": post({ t: "halt", symbol: msg.symbol, halted: msg.status === "halted", reason: msg.reason }); break;
    case "scenario": post({ t: "scenarios", active: msg.active }); break;
    default: {
      const p = feed.pending.get(msg.id);
      if (p) { feed.pending.delete(msg.id); p.resolve(msg); }
    }
  }
}

function onBinary(buf) {
  const dv = new DataView(buf);
  const version = buf.byteLength >= 16 ? dv.getUint8(0) : 0;
  const header = version === 1 ? 16 : version === 2 ? 24 : 0;
  if (!header || buf.byteLength < header) {  // a future format: say so, once
    if (!feed.badFrame) post({ t: "banner", text: "The server sends a binary format this page does not know: reload it.", error: true });
    feed.badFrame = true;
    return;
  }
  const count = Math.min(dv.getUint32(4, true), (buf.byteLength - header) / RECORD);
  const now = Date.now();
  let maxTsMs = 0;
  for (let i = 0, o = header; i < count; i++, o += RECORD) {
    const tsMs = u64(dv, o) / 1e6;
    if (tsMs > maxTsMs) maxTsMs = tsMs;
    apply(dv.getUint16(o + 48, true), dv.getFloat64(o + 16, true), dv.getFloat64(o + 24, true),
      dv.getFloat64(o + 32, true), u64(dv, o + 40), u64(dv, o + 8), dv.getUint32(o + 60, true));
  }
  if (version === 2) feed.offset = u64(dv, 16);
  meter(count, now, maxTsMs);
}

// A u64 as a Number (exact to 2^53; ns timestamps lose only sub-microsecond digits).
function u64(dv, o) { return dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 4294967296; }

function apply(id, bid, ask, last, volume, seq, size) {
  if (id >= feed.seq.length) return;
  if (feed.replaying > 0) { feed.replaying--; feed.resumed.applied++; feed.resumedDirty = true; }
  const held = feed.seq[id];
  if (seq <= held) {
    // A replay may repeat what a snapshot gave: drop it. Without an epoch (an older server),
    // a symbol's seq falling far back is the only sign of a restart.
    if (feed.epoch !== null || seq >= held) return;
    feed.restarted = true;
  }
  feed.bid[id] = bid; feed.ask[id] = ask; feed.last[id] = last;
  feed.volume[id] = volume; feed.seq[id] = seq; feed.size[id] = size;
  if (!feed.changed[id]) { feed.changed[id] = 1; feed.changedIds.push(id); }
  if (feed.wanted) flush();
}

function meter(n, nowMs, tsMs) {
  feed.ticks += n;
  if (tsMs > 0 && feed.latN < feed.lat.length) feed.lat[feed.latN++] = nowMs - tsMs;
  const dt = performance.now() - feed.meterAt;
  if (dt >= 500) {
    feed.rate = Math.round((feed.ticks * 1000) / dt);
    if (feed.latN) {
      const lat = feed.lat.subarray(0, feed.latN).sort();
      feed.latency = lat[lat.length >> 1];
    }
    feed.ticks = 0; feed.latN = 0; feed.meterAt += dt;
  }
}

// One message per page frame at most: the changed symbols' latest state, as one transferred
// Float64Array, FIELDS numbers a symbol.
function flush() {
  const ids = feed.changedIds;
  if (!ids.length && !feed.restarted && !feed.resumedDirty && !book.dirty) return;
  const out = new Float64Array(ids.length * FIELDS);
  for (let i = 0, o = 0; i < ids.length; i++, o += FIELDS) {
    const id = ids[i];
    out[o] = id; out[o + 1] = feed.bid[id]; out[o + 2] = feed.ask[id]; out[o + 3] = feed.last[id];
    out[o + 4] = feed.volume[id]; out[o + 5] = feed.seq[id]; out[o + 6] = feed.size[id];
    feed.changed[id] = 0;
  }
  ids.length = 0;
  feed.wanted = false;
  post({ t: "update", quotes: out, rate: feed.rate, latency: feed.latency,
    restarted: feed.restarted, resumed: feed.resumedDirty ? feed.resumed : null,
    book: book.dirty ? bookView() : null }, [out.buffer]);
  book.dirty = false;
  feed.restarted = false; feed.resumedDirty = false;
}

// ------------------------------------------------------------------ the selected symbol's book
// Its own JSON connection (README, "Order books"): the tick feed stays binary and book-free, and
// only the symbol the page shows has a book. Changes are applied in book seq order and nothing
// more is checked; a seq that does not follow (or a conflated base that is not ours) drops the
// book and subscribes it again, so the page never shows a book it knows to be wrong.
const BOOK_ROWS = 10;        // levels a side sent to the page
const book = {
  depth: 0, symbol: null, ws: null, nextId: 1, held: null, dirty: false, resyncs: 0, attempt: 0,
  ackId: 0, acked: false,  // the last book subscribe, and whether its ack (then snapshot) came
};

function bookWant(symbol) {
  const old = book.symbol;
  book.symbol = symbol;
  if (old === symbol) return;
  book.held = null; book.dirty = true;
  if (!book.depth) return;
  if (!book.ws) { if (symbol) bookConnect(); return; }
  if (book.ws.readyState !== WebSocket.OPEN) return;  // its welcome subscribes book.symbol
  if (old) bookSend("unsubscribe", { symbols: [old] });
  if (symbol) bookSubscribe(symbol);
}

function bookSubscribe(symbol) {
  book.acked = false;
  book.ackId = bookSend("subscribe", { symbols: [symbol], book: true, snapshot: false });
}

function bookConnect() {
  const ws = new WebSocket(feed.url, ["tickwire.v1"]);
  book.ws = ws;
  ws.onmessage = (ev) => { if (book.ws === ws) onBookJson(JSON.parse(ev.data)); };
  ws.onclose = () => {
    if (book.ws !== ws) return;
    book.ws = null; book.held = null; book.dirty = true;
    const delay = Math.min(BACKOFF_MAX_MS, 250 * 2 ** book.attempt++);
    setTimeout(() => { if (!book.ws && book.symbol && book.depth) bookConnect(); }, delay);
  };
}

function bookSend(op, fields) {
  const id = book.nextId++;
  if (book.ws && book.ws.readyState === WebSocket.OPEN) book.ws.send(JSON.stringify({ op, id, ...fields }));
  return id;
}

function onBookJson(msg) {
  if (msg.type === "welcome") {
    book.attempt = 0;
    if (book.symbol) bookSubscribe(book.symbol);
  } else if (msg.type === "ack") {
    if (msg.id === book.ackId) book.acked = true;
  } else if (msg.type === "book_snapshot") {
    for (const e of msg.books) {
      if (e.symbol !== book.symbol) continue;
      const scale = 10 ** e.decimals;
      const side = (rows) => new Map(rows.map(([p, s]) => [Math.round(p * scale), s]));
      book.held = { symbol: e.symbol, seq: e.seq, depth: e.depth, scale, tick: e.tick_units,
        decimals: e.decimals,
        bids: side(e.bids), asks: side(e.asks) };
      book.dirty = true;
    }
  } else if (msg.type === "book") {
    for (const e of msg.books) {
      const h = book.held;
      if (!h) {  // after our subscribe's ack, a change before any snapshot: the snapshot was lost
        if (book.acked && e.symbol === book.symbol) bookResync();
        continue;
      }
      if (e.symbol !== h.symbol) continue;
      const base = e.conflated ? e.since : e.seq - e.changes.length;
      if (base !== h.seq || e.seq <= h.seq) { bookResync(); continue; }
      for (const [side, p, s] of e.changes) {
        const levels = side === "bid" ? h.bids : h.asks;
        const u = Math.round(p * h.scale);
        if (s) levels.set(u, s); else levels.delete(u);
      }
      bookCut(h);
      h.seq = e.seq;
      book.dirty = true;
    }
  } else if (msg.type === "error") {
    post({ t: "banner", text: `Order book of ${book.symbol}: ${msg.message}`, error: true });
  }
  if (book.dirty && feed.wanted) flush();
}

// A client keeps the levels within its depth of each side's best (the server's view of it).
function bookCut(h) {
  const span = h.depth * h.tick;
  if (h.bids.size) {
    const low = Math.max(...h.bids.keys()) - span;
    for (const u of h.bids.keys()) if (u <= low) h.bids.delete(u);
  }
  if (h.asks.size) {
    const high = Math.min(...h.asks.keys()) + span;
    for (const u of h.asks.keys()) if (u >= high) h.asks.delete(u);
  }
}

function bookResync() {
  const symbol = book.symbol;
  book.held = null; book.dirty = true; book.resyncs++;
  bookSend("unsubscribe", { symbols: [symbol] });
  bookSubscribe(symbol);
}

// What the page draws: the top BOOK_ROWS levels a side, best first, as [price, size] pairs.
function bookView() {
  const h = book.held;
  const out = { symbol: book.symbol, depth: book.depth, resyncs: book.resyncs, seq: -1,
    bids: [], asks: [] };
  if (!h || h.symbol !== book.symbol) return out;
  const top = (m, dir) => [...m.entries()].sort((a, b) => dir * (a[0] - b[0])).slice(0, BOOK_ROWS)
    .map(([u, s]) => [u / h.scale, s]);
  out.seq = h.seq; out.decimals = h.decimals; out.bids = top(h.bids, -1); out.asks = top(h.asks, 1);
  return out;
}
