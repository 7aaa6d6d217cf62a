/**
 * React hooks over client.js: live threads and messages, streams, optimistic sends, smooth text.
 *
 * An ES module with no build step: a plain page maps "react" in an import map; a bundler
 * resolves it from node_modules. Served at /react.js beside /client.js.
 *
 *   <ThreadlineProvider client={new ChatClient(url, { token })}>
 *     const { results, status, loadMore } = useUIMessages(threadId);
 *     const send = useSendMessage(threadId);   // shown at once, swapped for the server's copy
 *     const [text] = useSmoothText(message.text, { streaming: message.streaming });
 */
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState,
  useSyncExternalStore } from "react";
import { SmoothText } from "./client.js";

const ClientContext = createContext(null);

/** Gives the hooks below their ChatClient. */
export function ThreadlineProvider({ client, children }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

export function useThreadlineClient() {
  const client = useContext(ClientContext);
  if (!client) throw new Error("wrap the app in <ThreadlineProvider client={new ChatClient(...)}>");
  return client;
}

/** "connecting" | "open" | "closed" | "unauthorized", live. */
export function useConnectionStatus() {
  const client = useThreadlineClient();
  return useSyncExternalStore((notify) => client.onStatus(notify), () => client.status);
}

/** A live query: {data, error, isLoading}; ``args`` null skips it. */
export function useQuery(name, args) {
  const client = useThreadlineClient();
  const key = args === null ? null : JSON.stringify(args);
  const [state, setState] = useState({ data: undefined, error: null, key: null });
  useEffect(() => {
    if (key === null) return undefined;
    return client.subscribe(name, JSON.parse(key), (data) => setState({ data, error: null, key }),
      { onError: (error) => setState({ data: undefined, error, key }) });
  }, [client, name, key]);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : null, isLoading: key !== null && !current };
}

/** The caller's threads, newest first, live: {threads, isDone, loadMore, isLoading, error}. */
export function useThreads({ numItems = 30 } = {}) {
  const [count, setCount] = useState(numItems);
  const { data, error, isLoading } = useQuery("threads.list", { paginationOpts: { numItems: count } });
  const isDone = data ? data.isDone : false;
  const loadMore = useCallback((more = numItems) => setCount((c) => Math.min(100, c + more)), [numItems]);
  return { threads: data ? data.page : [], isDone, loadMore, isLoading, error };
}

// One ThreadView per (client, thread), shared by every hook of that thread on the page: a send
// from useSendMessage shows at once in useThreadMessages.
const views = new WeakMap();

function shared(client, threadId, options) {
  let byThread = views.get(client);
  if (!byThread) views.set(client, (byThread = new Map()));
  let entry = byThread.get(threadId);
  if (!entry) {
    const listeners = new Set();
    entry = { refs: 0, version: 0, listeners, view: null };
    entry.view = client.watchThread(threadId, () => {
      entry.version += 1;
      for (const fn of listeners) fn();
    }, options);
    byThread.set(threadId, entry);
  }
  return entry;
}

function acquire(client, threadId, options = {}) {
  const entry = shared(client, threadId, options);
  entry.refs += 1;
  return () => {
    entry.refs -= 1;
    if (entry.refs === 0) {
      entry.view.close();
      views.get(client)?.delete(threadId);
    }
  };
}

// The first hook of a thread on the page opens its view, with its page size.
function useView(threadId, numItems) {
  const client = useThreadlineClient();
  useEffect(() => (threadId ? acquire(client, threadId, { numItems }) : undefined), [client, threadId]);
  const entry = threadId ? shared(client, threadId, { numItems }) : null;
  const version = useSyncExternalStore(
    (notify) => {
      if (!entry) return () => {};
      entry.listeners.add(notify);
      return () => entry.listeners.delete(notify);
    },
    () => (entry ? entry.version : -1),
  );
  return { view: entry ? entry.view : null, version };
}

/**
 * A thread's messages, oldest first, live: saved ones, replies streaming in (``streaming``,
 * ``text`` so far) and optimistic sends (``status: "sending"``). ``status``: "LoadingFirstPage",
 * "CanLoadMore" or "Exhausted"; ``loadMore(n)`` shows older ones.
 */
export function useThreadMessages(threadId, { initialNumItems = 30 } = {}) {
  const { view, version } = useView(threadId, initialNumItems);
  const results = useMemo(() => (view ? view.messages() : []), [view, version]);
  const loaded = view && version > 0 && !view.error;
  const status = !loaded ? "LoadingFirstPage" : view.isDone ? "Exhausted" : "CanLoadMore";
  const loadMore = useCallback((n = 30) => (view ? view.loadMore(n) : false), [view]);
  return { results, status, loadMore, isStreaming: view ? view.streaming() : false, error: view?.error ?? null };
}

/** useThreadMessages grouped as a chat shows them: one UI message per order (see toUIMessages). */
export function useUIMessages(threadId, options) {
  const out = useThreadMessages(threadId, options);
  const results = useMemo(() => toUIMessages(out.results), [out.results]);
  return { ...out, results };
}

/**
 * Messages (oldest first) as UI messages: the prompt of an order is one, and everything that
 * answered it (steps, tool calls with their results, the final text) another. Parts are typed:
 * text, reasoning, tool ({toolCallId, toolName, args, state: "input-streaming" | "call" | "result"
 * | "error", result}), object, file, image, source, step-start.
 */
export function toUIMessages(messages) {
  const out = [];
  let current = null;
  for (const m of messages) {
    const role = m.role === "user" ? "user" : m.role === "system" ? "system" : "assistant";
    if (!current || current.role !== role || current.order !== m.order || role === "user") {
      current = { key: `${m.order}-${role}-${m.messageId}`, id: m.messageId, order: m.order, role,
                  agentName: m.agentName ?? null, status: m.status, streaming: false, text: "", parts: [],
                  error: null, messages: [] };
      out.push(current);
    }
    current.messages.push(m);
    current.status = m.status;
    current.streaming = current.streaming || Boolean(m.streaming);
    if (m.error) current.error = m.error;
    if (m.agentName) current.agentName = m.agentName;
    if (role === "assistant" && m.role === "assistant") current.parts.push({ type: "step-start" });
    addParts(current, m);
  }
  for (const ui of out) ui.text = ui.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  return out;
}

function addParts(ui, m) {
  const tools = new Map(ui.parts.filter((p) => p.type === "tool").map((p) => [p.toolCallId, p]));
  const saved = m.parts || [];
  const hasText = saved.some((p) => p.type === "text");
  for (const p of saved) {
    if (p.type === "text" || p.type === "reasoning") ui.parts.push({ type: p.type, text: p.text });
    else if (p.type === "tool-call") {
      const tool = { type: "tool", toolCallId: p.toolCallId, toolName: p.toolName, args: p.args, state: "call" };
      tools.set(p.toolCallId, tool);
      ui.parts.push(tool);
    } else if (p.type === "tool-result") {
      const tool = tools.get(p.toolCallId);
      if (tool) Object.assign(tool, { state: p.isError ? "error" : "result", result: p.result });
      else ui.parts.push({ type: "tool", toolCallId: p.toolCallId, toolName: p.toolName, state: p.isError ? "error" : "result",
                           result: p.result });
    } else if (p.type === "object") ui.parts.push({ type: "object", object: p.object });
    else ui.parts.push({ ...p });
  }
  if (m.streaming) {  // a reply in flight: what its deltas brought so far
    for (const p of m.toolParts || []) addParts(ui, { parts: [p] });
    for (const [id, input] of Object.entries(m.toolInput || {})) {
      if (!tools.has(id) && !ui.parts.some((p) => p.toolCallId === id)) {
        ui.parts.push({ type: "tool", toolCallId: id, toolName: "", state: "input-streaming", argsText: input });
      }
    }
    if (m.object !== undefined) ui.parts.push({ type: "object", object: m.object });
    if (m.text && !hasText) ui.parts.push({ type: "text", text: m.text });
  } else if (!saved.length && m.text) ui.parts.push({ type: "text", text: m.text });
}

/**
 * Sends to a thread: ``send(text, {files, agentName})`` shows the message at once in every
 * useThreadMessages of the thread (status "sending"), and swaps in the server's copy when it
 * arrives; a refused send stays shown as "failed" with its error.
 */
export function useSendMessage(threadId, { agentName } = {}) {
  const client = useThreadlineClient();
  return useCallback(async (text, options = {}) => {
    const release = acquire(client, threadId);  // keep the view while the send is in flight
    try {
      return await shared(client, threadId, {}).view.sendMessage(text, { agentName, ...options });
    } finally {
      release();
    }
  }, [client, threadId, agentName]);
}

/**
 * This component's tab views the thread while mounted: ``{viewers, typists, typed, stoppedTyping}``
 * (who is there, one per user; who types now, not this user; call typed() on each keystroke).
 */
export function usePresence(threadId) {
  const client = useThreadlineClient();
  const [state, setState] = useState({ viewers: [], typists: [], presence: null });
  useEffect(() => {
    if (!threadId) return undefined;
    const presence = client.presence(threadId, (p) => setState({ viewers: p.viewers, typists: p.typists(), presence: p }));
    return () => presence.close();
  }, [client, threadId]);
  const { presence } = state;
  const typed = useCallback(() => presence && presence.typed(), [presence]);
  const stoppedTyping = useCallback(() => presence && presence.stoppedTyping(), [presence]);
  return { viewers: state.viewers, typists: state.typists, typed, stoppedTyping };
}

/**
 * Edits and their branches, live: ``forks`` (messages.branches: where an edited message has
 * versions on the branch shown, each with its versions and the active one), ``edit(messageId, text)``
 * (a new version, answered: messages.edit) and ``switchTo(order)`` (show that version).
 */
export function useBranches(threadId, { agentName } = {}) {
  const client = useThreadlineClient();
  const { data, error } = useQuery("messages.branches", threadId ? { threadId } : null);
  const edit = useCallback((messageId, text, options = {}) => client.mutate("messages.edit",
    { messageId, prompt: text, agentName: options.agentName || agentName }), [client, agentName]);
  const switchTo = useCallback((order) => client.mutate("messages.switchBranch", { threadId, order }), [client, threadId]);
  return { forks: data ? data.forks : [], error, edit, switchTo };
}

/** Stop the thread's reply being generated (from any tab). */
export function useAbort(threadId) {
  const client = useThreadlineClient();
  return useCallback(() => client.mutate("streams.abort", { threadId }), [client, threadId]);
}

/**
 * Streamed text revealed at an adaptive pace, and the rest revealed smoothly (not at once) when
 * the stream ends: ``[visibleText, {isRevealing}]``.
 */
export function useSmoothText(text, { streaming = true, minCharsPerSec = 30 } = {}) {
  const [shown, setShown] = useState(streaming ? "" : text);
  const smooth = useRef(null);
  if (smooth.current === null) smooth.current = new SmoothText(setShown, { minCharsPerSec });
  useEffect(() => {
    smooth.current.update(text, { streaming });
  }, [text, streaming]);
  useEffect(() => () => smooth.current.dispose(), []);
  return [shown, { isRevealing: shown.length < text.length }];
}
