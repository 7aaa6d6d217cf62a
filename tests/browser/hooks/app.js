// A page built on /react.js as an app would use it, recording what the tests check.
import { createElement as h, useEffect } from "react";
import { createRoot } from "react-dom/client";
import { ChatClient } from "/client.js";
import {
  ThreadlineProvider, useBranches, useConnectionStatus, usePresence, useSendMessage, useSmoothText,
  useThreadMessages, useThreads, useUIMessages,
} from "/react.js";

const params = new URLSearchParams(location.hash.slice(1));
const client = new ChatClient(params.get("ws"), { token: params.get("token") });
window.__reveals = {};   // UI message key -> [revealed length, still streaming], render by render
window.__userStatuses = {}; // user message text -> statuses it was shown with

function Message({ m }) {
  const [text] = useSmoothText(m.text, { streaming: m.streaming });
  useEffect(() => {
    if (m.role === "assistant") (window.__reveals[m.key] ||= []).push([text.length, m.streaming]);
    if (m.role === "user") (window.__userStatuses[m.text] ||= []).push(m.status);
  });
  return h("div", { "data-testid": "ui-message", "data-role": m.role, "data-status": m.status,
                    "data-streaming": String(m.streaming), "data-full": m.text },
    h("span", { "data-testid": "ui-text" }, text),
    ...m.parts.filter((p) => p.type === "tool").map((p) =>
      h("span", { key: p.toolCallId, "data-testid": "ui-tool", "data-state": p.state }, p.toolName)));
}

function Thread({ threadId }) {
  const { results, status, loadMore } = useUIMessages(threadId, { initialNumItems: 10 });
  const raw = useThreadMessages(threadId, { initialNumItems: 10 });
  const send = useSendMessage(threadId, { agentName: "assistant" });
  const { viewers, typists, typed } = usePresence(threadId);
  const { forks, switchTo } = useBranches(threadId);
  const shownForks = forks.map((f) => `${f.parentOrder}:${f.versions.map((v) => v.order + (v.active ? "*" : "")).join(",")}`);
  const ask = (agentName) => send(document.getElementById("prompt").value, { agentName }).catch(() => {});
  return h("div", null,
    h("p", { "data-testid": "page-status" }, status),
    h("p", { "data-testid": "raw-count" }, String(raw.results.length)),
    h("button", { "data-testid": "more", onClick: () => loadMore(20) }, "more"),
    h("p", { "data-testid": "viewers" }, viewers.map((v) => `${v.userId}:${v.connections}`).join(",")),
    h("p", { "data-testid": "typists" }, typists.map((v) => v.userId).join(",")),
    h("p", { "data-testid": "forks" }, shownForks.join(" ")),
    h("button", { "data-testid": "first-version", onClick: () => forks.length && switchTo(forks[0].versions[0].order) },
      "first version"),
    h("input", { id: "prompt", "data-testid": "prompt", onInput: typed }),
    h("button", { "data-testid": "send", onClick: () => ask("assistant") }, "send"),
    h("button", { "data-testid": "send-weather", onClick: () => ask("weather") }, "ask weather"),
    h("div", { "data-testid": "messages" }, ...results.map((m) => h(Message, { key: m.key, m }))));
}

function App() {
  const status = useConnectionStatus();
  const { threads } = useThreads();
  const threadId = params.get("thread");
  return h("div", null,
    h("p", { "data-testid": "conn" }, status),
    h("ul", null, ...threads.map((t) => h("li", { key: t.threadId, "data-testid": "thread" }, t.title))),
    threadId ? h(Thread, { threadId }) : null);
}

createRoot(document.getElementById("root")).render(h(ThreadlineProvider, { client }, h(App)));
