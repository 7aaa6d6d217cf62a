// threadline browser client: an ES module with no build step. See client.d.ts.
//
//   import { ChatClient } from "/client.js";
//   const client = new ChatClient("ws://localhost:8000/ws", { token });
//   const stop = client.subscribe("threads.list", {}, (value) => render(value));
//   const { threadId } = await client.mutate("threads.create", { title: "Hi" });

const PROTOCOL = 1;

export class MutationError extends Error {
  constructor(error) {
    super(error.message || error.code);
    this.code = error.code;
    this.retryAfterMs = error.retryAfterMs;
  }
}

function randomId(prefix) {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);  // (React Native)
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A tab keeps its client id across reloads where the platform has sessionStorage (browsers);
// elsewhere (server-side rendering, React Native, Node) each client makes its own.
function tabStorage() {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;  // storage denied (sandboxed frames)
  }
}

function pointerTokens(pointer) {
  return pointer === "" ? [] : pointer.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

// Walks to what `pointer` names, copying each object or array on the way (in `root.v`), and hands
// the copied parent and the member (an index in an array) to `change`.
function editAt(root, pointer, change) {
  let parent = root;
  let key = "v";
  for (const token of pointerTokens(pointer)) {
    const child = parent[key];
    if (child === null || typeof child !== "object") throw new Error(`no ${pointer} to patch`);
    const copy = Array.isArray(child) ? child.slice() : { ...child };
    parent[key] = copy;
    parent = copy;
    key = Array.isArray(copy) ? Number(token) : token;
  }
  return change(parent, key);
}

/**
 * A live query's patch applied: JSON Patch (RFC 6902) operations add, remove, replace and move.
 * `value` is left as it was; what changed is copied and the rest shared, so a UI that compares
 * by reference (React) re-renders exactly the records that changed.
 */
export function applyPatch(value, ops) {
  const root = { v: value };
  for (const op of ops) {
    if (op.op === "move") {
      const moved = editAt(root, op.from, (parent, key) => {
        const taken = parent[key];
        if (Array.isArray(parent)) parent.splice(key, 1);
        else delete parent[key];
        return taken;
      });
      editAt(root, op.path, (parent, key) => (Array.isArray(parent) ? parent.splice(key, 0, moved) : (parent[key] = moved)));
    } else if (op.op === "add") {
      editAt(root, op.path, (parent, key) => (Array.isArray(parent) ? parent.splice(key, 0, op.value) : (parent[key] = op.value)));
    } else if (op.op === "remove") {
      editAt(root, op.path, (parent, key) => (Array.isArray(parent) ? parent.splice(key, 1) : delete parent[key]));
    } else if (op.op === "replace") {
      editAt(root, op.path, (parent, key) => { parent[key] = op.value; });
    } else {
      throw new Error(`unknown patch operation ${op.op}`);
    }
  }
  return root.v;
}

/** One WebSocket kept alive across reconnects: subscriptions, mutations, deltas. */
export class ChatClient {
  constructor(url, { token, clientId, minBackoffMs = 100, maxBackoffMs = 10000, WebSocket: socketClass } = {}) {
    this.url = url;
    this.token = token;
    // the platform's WebSocket unless one is given (e.g. the ws package on a Node without one)
    this.WebSocket = socketClass || globalThis.WebSocket;
    const storage = tabStorage();
    this.clientId = clientId || storage?.getItem("threadline.clientId") || randomId("tab-");
    storage?.setItem("threadline.clientId", this.clientId);
    this.minBackoffMs = minBackoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.subs = new Map(); // id -> {query, args, onResult, onError, onDelta, cursors()}
    this.pending = new Map(); // request id -> {name, args, resolve, reject}
    this.listeners = new Set();
    this.status = "connecting";
    this.userId = null;
    this.seq = 0;
    this.attempt = 0;
    this.closed = false;
    this.ws = null;
    this._open();
  }

  /** Calls fn(status) on "connecting" | "open" | "closed" | "unauthorized". Returns an unsubscribe. */
  onStatus(fn) {
    this.listeners.add(fn);
    fn(this.status);
    return () => this.listeners.delete(fn);
  }

  _setStatus(status) {
    this.status = status;
    for (const fn of this.listeners) fn(status);
  }

  async _open() {
    if (this.closed) return;
    this._setStatus("connecting");
    const token = typeof this.token === "function" ? await this.token() : this.token;
    if (!this.WebSocket) {  // no WebSocket here (a server rendering a page): nothing to connect with
      this._setStatus("closed");
      return;
    }
    const ws = new this.WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "connect", protocol: PROTOCOL, token, clientId: this.clientId }));
    ws.onmessage = (event) => this._frame(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === 4401 && typeof this.token !== "function") {
        this._setStatus("unauthorized");
        return;
      }
      this._setStatus(this.closed ? "closed" : "connecting");
      if (this.closed) return;
      const delay = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this._open(), delay);
    };
  }

  _frame(frame) {
    switch (frame.type) {
      case "connected":
        this.userId = frame.userId;
        this.attempt = 0;
        this._setStatus("open");
        // resubscribe (with stream cursors) and resend unanswered mutations with their ids
        for (const [id, sub] of this.subs) this._sendSubscribe(id, sub);
        for (const [id, m] of this.pending) this._send({ type: "mutate", id, name: m.name, args: m.args });
        break;
      case "result": {
        const sub = this.subs.get(frame.id);
        if (sub) sub.stale = false;
        if (sub && frame.version >= sub.version) {
          sub.version = frame.version;
          sub.value = frame.value;
          sub.onResult(frame.value, frame.version);
        }
        break;
      }
      case "patch": {
        const sub = this.subs.get(frame.id);
        if (!sub || sub.stale) break;  // stale: a whole result is on its way; patches before it are for the old value
        let value;
        try {
          if (frame.baseVersion !== sub.version) throw new Error("patch for another version");
          value = applyPatch(sub.value, frame.ops);
        } catch {
          this._resync(frame.id, sub);  // never expected on one ordered connection
          break;
        }
        sub.version = frame.version;
        sub.value = value;
        sub.onResult(value, frame.version);
        break;
      }
      case "delta": {
        const sub = this.subs.get(frame.id);
        if (sub && sub.onDelta) sub.onDelta(frame);
        break;
      }
      case "mutated": {
        const m = this.pending.get(frame.id);
        if (!m) break;
        this.pending.delete(frame.id);
        if (frame.ok) m.resolve(frame.value);
        else m.reject(new MutationError(frame.error));
        break;
      }
      case "error": {
        const sub = frame.id && this.subs.get(frame.id);
        if (sub) {
          this.subs.delete(frame.id);
          if (sub.onError) sub.onError(new MutationError(frame));
        } else if (frame.code === "unauthorized") {
          this._setStatus("unauthorized");
        }
        break;
      }
    }
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === 1 && this.status === "open") {  // OPEN
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false; // sent on (re)connect
  }

  _sendSubscribe(id, sub) {
    const args = { ...sub.args };
    const cursors = sub.cursors ? sub.cursors() : null;
    if (cursors && Object.keys(cursors).length) args.streamCursors = cursors;
    this._send({ type: "subscribe", id, query: sub.query, args, patches: true });
  }

  /** Ask again for a whole result of a subscription whose value a patch did not fit. */
  _resync(id, sub) {
    sub.stale = true;
    this._send({ type: "unsubscribe", id });
    this._sendSubscribe(id, sub);
  }

  /** Live query: onResult(value, version) now and on every change. Returns an unsubscribe function. */
  subscribe(query, args, onResult, { onError, onDelta, cursors } = {}) {
    const id = "s" + ++this.seq;
    const sub = { query, args, onResult, onError, onDelta, cursors, version: -1 };
    this.subs.set(id, sub);
    this._sendSubscribe(id, sub);
    return () => {
      if (this.subs.delete(id)) this._send({ type: "unsubscribe", id });
    };
  }

  /** Run a mutation exactly once (resent with the same id after a reconnect). */
  mutate(name, args = {}, { requestId } = {}) {
    const id = requestId || randomId("m-");
    return new Promise((resolve, reject) => {
      this.pending.set(id, { name, args, resolve, reject });
      this._send({ type: "mutate", id, name, args });
    });
  }

  /** Drop the socket as a network failure would (the client reconnects). */
  dropConnection() {
    if (this.ws) this.ws.close();
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  /** The HTTP origin of the server this client talks to (from its WebSocket URL). */
  get httpBase() {
    return this.url.replace(/^ws/, "http").replace(/\/ws$/, "");
  }

  async _token() {
    return typeof this.token === "function" ? await this.token() : this.token;
  }

  /**
   * Upload a File or Blob: resolves to its record {fileId, name, mediaType, size, hash, ...}.
   * onProgress(fraction) follows the upload; the server reads the type from the bytes and
   * refuses what it does not accept (error.code "too_large", "unsupported_media_type"...).
   */
  async uploadFile(file, { name, onProgress } = {}) {
    const token = await this._token();
    const form = new FormData();
    form.append("file", file, name || file.name || "file");
    return await new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${this.httpBase}/api/files`);
      xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.upload.onprogress = (e) => { if (onProgress && e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status === 201) { if (onProgress) onProgress(1); resolve(body); }
        else reject(Object.assign(new Error(body.message || `upload failed (${xhr.status})`), { code: body.code || "internal" }));
      };
      xhr.onerror = () => reject(Object.assign(new Error("the upload failed (network)"), { code: "unavailable" }));
      xhr.send(form);
    });
  }

  /** A short-lived link to a file anyone holding it may GET (for <img src>, downloads). */
  async fileUrl(fileId) {
    this.links = this.links || new Map();
    const known = this.links.get(fileId);
    if (known && known.expiresAt * 1000 - Date.now() > 60_000) return known.url;
    const res = await fetch(`${this.httpBase}/api/files/${encodeURIComponent(fileId)}/url`,
                            { method: "POST", headers: { Authorization: `Bearer ${await this._token()}` } });
    if (!res.ok) throw new Error(`no link for ${fileId} (${res.status})`);
    const link = await res.json();
    this.links.set(fileId, link);
    return link.url;
  }

  /** A thread's messages with their live streams and this tab's optimistic messages. */
  /** ``query``: "messages.list" (the caller's thread), or "admin.messages" (any thread; an admin token). */
  watchThread(threadId, onChange, { numItems = 30, agentName, query = "messages.list" } = {}) {
    return new ThreadView(this, threadId, onChange, { numItems, agentName, query });
  }

  /** This tab views ``threadId`` (others see it in presence.list) until the handle's close();
   * onChange(presence) whenever who is there or typing changes. */
  presence(threadId, onChange, { everyMs = 10000 } = {}) {
    return new Presence(this, threadId, onChange, everyMs);
  }
}

/**
 * One tab's presence in a thread: said again every ``everyMs`` and after each reconnect, typing
 * reported as it happens, and everyone's presence (viewers, who types) kept from the live query.
 */
export class Presence {
  constructor(client, threadId, onChange, everyMs) {
    this.client = client;
    this.threadId = threadId;
    this.viewers = [];
    this._onChange = onChange;
    this._typing = false;
    this._saidTypingAt = 0;
    this._stopTimer = null;
    this._expiry = null;
    this._unsubscribe = client.subscribe("presence.list", { threadId }, (value) => {
      this.viewers = value.viewers.map((v) => ({ ...v, typingUntil: v.typing ? Date.now() + v.typingForMs : 0 }));
      this._emitAndExpire();
    });
    this._offStatus = client.onStatus((status) => { if (status === "open") this._say(this._typing || undefined); });
    this._heartbeat = setInterval(() => this._say(), everyMs);
  }

  _say(typing) {
    if (this.client.status !== "open") return;  // (said again when the connection is back)
    const args = typing === undefined ? { threadId: this.threadId } : { threadId: this.threadId, typing };
    this.client.mutate("presence.set", args).catch(() => {});
  }

  _emitAndExpire() {
    clearTimeout(this._expiry);
    const next = Math.min(...this.viewers.filter((v) => v.typingUntil).map((v) => v.typingUntil));
    if (Number.isFinite(next)) this._expiry = setTimeout(() => this._emitAndExpire(), Math.max(0, next - Date.now()) + 20);
    this._onChange(this);
  }

  /** Users typing now (not this tab's own user unless ``includeMe``). */
  typists({ includeMe = false } = {}) {
    const now = Date.now();
    return this.viewers.filter((v) => v.typingUntil > now && (includeMe || v.userId !== this.client.userId));
  }

  /** Call on every keystroke: "typing" goes out at most every 2 s, "stopped" 3 s after the last one. */
  typed() {
    const now = Date.now();
    if (!this._typing || now - this._saidTypingAt > 2000) {
      this._typing = true;
      this._saidTypingAt = now;
      this._say(true);
    }
    clearTimeout(this._stopTimer);
    this._stopTimer = setTimeout(() => this.stoppedTyping(), 3000);
  }

  /** The message went out (or the text was cleared): not typing any more. */
  stoppedTyping() {
    clearTimeout(this._stopTimer);
    if (this._typing) {
      this._typing = false;
      this._say(false);
    }
  }

  close() {
    clearInterval(this._heartbeat);
    clearTimeout(this._stopTimer);
    clearTimeout(this._expiry);
    this._offStatus();
    this._unsubscribe();
    if (this.client.status === "open") {
      this.client.mutate("presence.set", { threadId: this.threadId, leave: true }).catch(() => {});
    }
  }
}

/**
 * Keeps one thread's messages: the server's page, the in-flight streams assembled
 * from deltas, and optimistic messages shown until the server's copy arrives.
 */
export class ThreadView {
  constructor(client, threadId, onChange, { numItems, agentName, query = "messages.list" }) {
    this.client = client;
    this.query = query;
    this.threadId = threadId;
    this.onChange = onChange;
    this.numItems = numItems;
    this.agentName = agentName;
    this.page = [];
    this.older = []; // messages older than the live window (newest first), loaded page by page
    this.olderCursor = null;
    this.olderDone = false;
    this.loadingOlder = false;
    this.liveDone = true;
    this.streams = new Map(); // streamId -> {streamId, order, stepOrder, status, text, seq, parts, object, agentName}
    this.optimistic = []; // {clientMessageId, text, status: "sending"|"failed", error, createdAt}
    this._subscribe();
  }

  _subscribe() {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = this.client.subscribe(
      this.query,
      { threadId: this.threadId, streams: true, paginationOpts: { numItems: this.numItems } },
      (value) => this._result(value),
      {
        onDelta: (frame) => this._delta(frame),
        onError: (error) => { this.error = error; this._emit(); },
        cursors: () => {
          const out = {};
          for (const s of this.streams.values()) if (s.status === "streaming") out[s.streamId] = s.seq;
          return out;
        },
      },
    );
  }

  get isDone() {
    return this.liveDone || this.olderDone;
  }

  /** Show older messages too: the live window grows to 100, then older pages are fetched once each. */
  loadMore(count = 30) {
    if (this.isDone || this.loadingOlder) return false;
    if (this.numItems < 100) {
      this.numItems = Math.min(100, this.numItems + count);
      this._subscribe();
      return true;
    }
    this.loadingOlder = true;
    const cursor = this.olderCursor || this.liveCursor;
    const stop = this.client.subscribe(
      this.query,
      { threadId: this.threadId, paginationOpts: { numItems: count, cursor } },
      (value) => {
        stop();
        const known = new Set(this.older.map((m) => m.messageId));
        this.older.push(...value.page.filter((m) => !known.has(m.messageId)));
        this.olderCursor = value.continueCursor;
        this.olderDone = value.isDone;
        this.loadingOlder = false;
        this._emit();
      },
      { onError: () => { this.loadingOlder = false; } },
    );
    return true;
  }

  _result(value) {
    if (this.numItems >= 100 && this.page.length && value.page.length) {
      // messages that fell off the end of the live window are older, not deleted: keep them
      const oldest = value.page[value.page.length - 1];
      const kept = new Set(value.page.map((m) => m.messageId));
      const fell = this.page.filter((m) => !kept.has(m.messageId) &&
        (m.order < oldest.order || (m.order === oldest.order && m.stepOrder < oldest.stepOrder)));
      const known = new Set(this.older.map((m) => m.messageId));
      this.older.unshift(...fell.filter((m) => !known.has(m.messageId)));
    }
    this.page = value.page;
    this.liveDone = value.isDone;
    if (!this.olderCursor) this.liveCursor = value.continueCursor;
    const listed = new Set();
    for (const s of value.streams || []) {
      listed.add(s.streamId);
      const mine = this.streams.get(s.streamId);
      if (!mine || s.seq >= mine.seq) {
        this.streams.set(s.streamId, { ...s, parts: mine && mine.seq === s.seq ? mine.parts : [], object: mine?.object });
      } else {
        mine.status = s.status;
      }
    }
    for (const id of [...this.streams.keys()]) if (!listed.has(id)) this.streams.delete(id);
    // an optimistic message goes exactly when the server's copy is in the page
    const arrived = new Set(this.page.map((m) => m.clientMessageId).filter(Boolean));
    this.optimistic = this.optimistic.filter((o) => !arrived.has(o.clientMessageId));
    this._emit();
  }

  _delta(frame) {
    let s = this.streams.get(frame.streamId);
    if (!s) {
      s = { streamId: frame.streamId, status: "streaming", text: "", seq: 0, parts: [] };
      this.streams.set(frame.streamId, s);
    }
    if (frame.seq !== s.seq + 1) return; // the server never skips; a stale frame is ignored
    s.seq = frame.seq;
    for (const part of frame.parts) {
      if (part.type === "text") s.text += part.text;
      else if (part.type === "object") s.object = part.object;
      else if (part.type === "tool-call-delta") {
        // a tool call's arguments as the model writes them; the whole call follows as "tool-call"
        s.toolInput = s.toolInput || {};
        s.toolInput[part.toolCallId] = (s.toolInput[part.toolCallId] || "") + part.argsTextDelta;
      } else s.parts.push(part);
    }
    this._emit();
  }

  /** Messages to show, oldest first: saved ones, in-flight replies, optimistic sends. */
  messages() {
    const out = [];
    const live = new Set(this.page.map((m) => m.messageId));
    for (const m of [...this.older].reverse()) if (!live.has(m.messageId)) out.push(m);
    for (const m of [...this.page].reverse()) {
      const s = [...this.streams.values()].find((x) => x.messageId === m.messageId);
      if (s && m.status === "pending") {
        out.push({ ...m, text: s.text, streaming: s.status === "streaming", streamId: s.streamId,
                   toolParts: s.parts, toolInput: s.toolInput || {}, object: s.object });
      } else {
        out.push(m);
      }
    }
    for (const o of this.optimistic) {
      out.push({ messageId: "optimistic:" + o.clientMessageId, role: "user", text: o.text, parts: o.parts, status: o.status,
                 error: o.error, retryAfterMs: o.retryAfterMs, clientMessageId: o.clientMessageId, optimistic: true });
    }
    return out;
  }

  streaming() {
    return [...this.streams.values()].some((s) => s.status === "streaming");
  }

  _emit() {
    this.onChange(this);
  }

  /**
   * Show the message at once, send it, and swap in the server's message when it arrives.
   * ``files``: uploaded file records (from uploadFile) to attach: images as image parts.
   */
  async sendMessage(text, { agentName, files = [] } = {}) {
    const clientMessageId = randomId("c-");
    const parts = [
      ...(text ? [{ type: "text", text }] : []),
      ...files.map((f) => ({ type: f.mediaType.startsWith("image/") ? "image" : "file", fileId: f.fileId,
                             mimeType: f.mediaType, filename: f.name })),
    ];
    const entry = { clientMessageId, text, parts, status: "sending", createdAt: Date.now() };
    this.optimistic.push(entry);
    this._emit();
    const what = files.length
      ? { message: { role: "user", content: parts.map((p) => (p.fileId ? { type: p.type, fileId: p.fileId } : p)) } }
      : { prompt: text };
    try {
      return await this.client.mutate("messages.send", {
        threadId: this.threadId, ...what, clientMessageId, agentName: agentName || this.agentName,
      });
    } catch (error) {
      entry.status = "failed";
      entry.error = error.message;
      entry.retryAfterMs = error.retryAfterMs;
      this._emit();
      throw error;
    }
  }

  /** Stop the reply being generated (from any tab). */
  abort() {
    return this.client.mutate("streams.abort", { threadId: this.threadId });
  }

  close() {
    if (this.unsubscribe) this.unsubscribe();
  }
}

const MAX_TICK_S = 0.1;  // the longest frame SmoothText counts (see its _tick)

/**
 * Reveals streamed text at an adaptive pace, like the reference's useSmoothText:
 * the further the shown text lags the received text, the faster it types.
 */
export class SmoothText {
  constructor(onText, { minCharsPerSec = 30, catchUpMs = 600 } = {}) {
    this.onText = onText;
    this.minCharsPerSec = minCharsPerSec;
    this.catchUpMs = catchUpMs;
    this.target = "";
    this.shown = 0;
    this.frame = null;
    this.last = 0;
  }

  /**
   * The full text received so far (it only grows while streaming). When the stream ends, what is
   * not shown yet is still revealed, quickly (within catchUpMs), never all at once; text that was
   * never streamed here (history) shows at once.
   */
  update(text, { streaming = true } = {}) {
    if (!text.startsWith(this.target.slice(0, this.shown))) this.shown = 0;
    const fresh = !this.frame && this.shown === 0 && this.target === "";
    this.target = text;
    this.ending = !streaming;
    if (!streaming && (fresh || this.shown >= text.length)) {
      this.shown = text.length;
      this._stop();
      this.onText(text);
      return;
    }
    if (!this.frame) {
      this.last = performance.now();
      this.frame = requestAnimationFrame((t) => this._tick(t));
    }
  }

  _tick(now) {
    // a frame held up (a busy machine, a tab in the background) counts as at most MAX_TICK_S: the text
    // then catches up over a few frames instead of in one jump
    const dt = Math.min(MAX_TICK_S, Math.max(0, now - this.last) / 1000);
    this.last = now;
    const behind = this.target.length - this.shown;
    // ended: the rest comes within catchUpMs (and fast enough to finish in about half that)
    const rate = Math.max(this.ending ? 4 * this.minCharsPerSec : this.minCharsPerSec,
                          behind / ((this.ending ? this.catchUpMs / 2 : this.catchUpMs) / 1000));
    this.shown = Math.min(this.target.length, this.shown + Math.max(1, Math.round(rate * dt)));
    this.onText(this.target.slice(0, this.shown));
    this.frame = this.shown < this.target.length ? requestAnimationFrame((t) => this._tick(t)) : null;
  }

  _stop() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = null;
  }

  dispose() {
    this._stop();
  }
}
