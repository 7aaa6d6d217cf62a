import { ChatClient } from "/client.js";

const $ = (id) => document.getElementById(id);
const state = { token: null, client: null, user: null, thread: null, agents: [], namespace: null, run: null,
                threadsSub: null, view: null, runsSub: null, runSub: null };

/** The admin token: from the address (#token=), kept in localStorage, dev mode's, or the sign-in form. */
async function token(why) {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    localStorage.setItem("threadline.adminToken", hash.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  const saved = !why && localStorage.getItem("threadline.adminToken");
  if (saved) return saved;
  if (!why) {
    const dev = await fetch("/api/dev-token?admin=1");
    if (dev.ok) return (await dev.json()).token;
  }
  return new Promise((resolve) => {
    $("pg-signin").style.display = "block";
    $("pg-signin-why").textContent = why || "";
    $("pg-signin").querySelector("form").onsubmit = (e) => {
      e.preventDefault();
      const pasted = $("pg-token").value.trim();
      if (!pasted) return;
      localStorage.setItem("threadline.adminToken", pasted);
      $("pg-signin").style.display = "none";
      resolve(pasted);
    };
  });
}

async function api(path, body) {
  const init = { headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" } };
  if (body !== undefined) Object.assign(init, { method: "POST", body: JSON.stringify(body) });
  const res = await fetch(path, init);
  const data = await res.json();
  if (res.status === 401 || res.status === 403) signOut(`${data.code}: ${data.message}`);
  if (!res.ok) throw new Error(`${data.code}: ${data.message}`);
  return data;
}

function signOut(why) {
  localStorage.removeItem("threadline.adminToken");
  $("pg-signin").style.display = "block";
  $("pg-signin-why").textContent = why;
  $("pg-signin").querySelector("form").onsubmit = (e) => {
    e.preventDefault();
    localStorage.setItem("threadline.adminToken", $("pg-token").value.trim());
    location.reload();
  };
}

function list(el, items, label, selected, onPick) {
  el.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = label(item);
    li.className = selected(item) ? "selected" : "";
    li.onclick = () => onPick(item);
    return li;
  }));
}

async function loadUsers() {
  const { users } = await api("/api/admin/users");
  state.users = users;
  renderUsers();
}

function renderUsers() {
  list($("users"), state.users || [], (u) => u, (u) => u === state.user, pickUser);
}

function pickUser(user) {
  state.user = user;
  renderUsers();
  if (state.threadsSub) state.threadsSub();
  state.threadsSub = state.client.subscribe("admin.threads", { userId: user, paginationOpts: { numItems: 100 } }, (v) => {
    state.threads = v.page;
    renderThreads();
  }, { onError: (e) => { $("pg-threads").textContent = e.message; } });
}

function renderThreads() {
  list($("pg-threads"), state.threads || [], (t) => t.title || t.threadId,
       (t) => t.threadId === state.thread?.threadId, pickThread);
}

async function loadNamespaces() {
  const { namespaces } = await api("/api/admin/namespaces");
  list($("pg-namespaces"), namespaces, (n) => n, (n) => n === state.namespace, pickNamespace);
}

async function pickNamespace(namespace) {
  state.namespace = namespace;
  await loadNamespaces();
  $("docs-title").textContent = `Documents of ${namespace}`;
  const { page } = await api(`/api/rag/${encodeURIComponent(namespace)}/documents?numItems=100`);
  $("pg-documents").replaceChildren(...page.map((d) => {
    const li = document.createElement("li");
    li.dataset.testid = "pg-document";
    li.append(`${d.title || d.key} — ${d.status}`, Object.assign(document.createElement("small"), {
      textContent: [d.key, `v${d.version}`, `${d.chunks} chunk${d.chunks === 1 ? "" : "s"}`, d.mediaType, d.error]
        .filter(Boolean).join(" · "),
    }));
    return li;
  }));
}

function showPassages(messages) {
  const sources = messages.flatMap((m) => (m.parts || []).filter((p) => p.type === "source"));
  $("passages").replaceChildren(...sources.map((s) => {
    const div = document.createElement("div");
    div.dataset.testid = "pg-passage";
    div.append(`[${s.sourceId}] ${s.title || s.key}${s.heading ? " · " + s.heading : ""}`,
      Object.assign(document.createElement("small"), { textContent: `${s.namespace}/${s.key} #${s.chunk} · ${s.excerpt}` }));
    return div;
  }));
}

/** Follow a thread live: its messages and the replies streaming in (any user's: admin.messages). */
function pickThread(thread) {
  state.thread = thread;
  $("thread-title").textContent = `Messages of “${thread.title || thread.threadId}”`;
  renderThreads();
  if (state.view) state.view.close();
  state.view = state.client.watchThread(thread.threadId, renderMessages, { numItems: 100, query: "admin.messages" });
}

function chip(kind, text, testid = "pg-part") {
  const el = Object.assign(document.createElement("span"), { className: `part ${kind}`, textContent: text });
  el.dataset.testid = testid;
  el.dataset.kind = kind;
  return el;
}

/** Every part of a message, each shown for what it is. */
function partsOf(m) {
  const out = [];
  const parts = [...(m.parts || []), ...(m.toolParts || [])];
  for (const p of parts) {
    if (p.type === "text") continue;
    if (p.type === "reasoning") out.push(chip("reasoning", `reasoning: ${p.text}`));
    else if (p.type === "tool-call") out.push(chip("tool-call", `${p.toolName}(${JSON.stringify(p.args)})`));
    else if (p.type === "tool-result") {
      const el = chip("tool-result", `${p.toolName} → ${JSON.stringify(p.result)}`);
      if (p.isError) el.classList.add("error");
      out.push(el);
    } else if (p.type === "source") {
      const el = chip("source", `[${p.sourceId}] ${p.title || p.key}${p.heading ? " · " + p.heading : ""} (${p.namespace}/${p.key})`);
      el.title = p.excerpt || "";
      out.push(el);
    } else if (p.type === "file" || p.type === "image") {
      const a = Object.assign(document.createElement("a"), { className: "pg-file part file", target: "_blank", rel: "noopener",
        textContent: `${p.type}: ${p.filename || p.fileId || p.url} (${p.mimeType || "?"})` });
      a.dataset.testid = "pg-file";
      if (p.fileId) state.client.fileUrl(p.fileId).then((url) => { a.href = url; }, () => {});  // an admin reads any
      else a.href = p.url;
      out.push(a);
    } else if (p.type === "object") {
      const el = chip("object", "");
      el.append(Object.assign(document.createElement("pre"), { textContent: JSON.stringify(p.object, null, 1) }));
      out.push(el);
    } else if (p.type === "refusal") out.push(chip("tool-result error", `refused: ${p.text}`));
  }
  if (m.object !== undefined && m.streaming) {
    out.push(chip("object", `object so far: ${JSON.stringify(m.object)}`));
  }
  if (m.error) out.push(chip("tool-result error", `error: ${m.error}`));
  return out;
}

function usageOf(m) {
  const u = m.usage;
  if (!u) return "";
  const extra = [u.cachedTokens ? `${u.cachedTokens} cached` : "", u.reasoningTokens ? `${u.reasoningTokens} reasoning` : ""]
    .filter(Boolean).join(", ");
  return `${u.promptTokens}+${u.completionTokens}${extra ? ` (${extra})` : ""}`;
}

function renderMessages(view) {
  $("rows").replaceChildren(...view.messages().map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "pg-row";
    const status = m.streaming ? "streaming" : m.status;
    for (const v of [m.order, m.stepOrder, m.role, status, m.agentName || "", m.model || "", usageOf(m)]) {
      const td = document.createElement("td");
      td.append(Object.assign(document.createElement("pre"), { textContent: String(v ?? "") }));
      tr.append(td);
    }
    const content = document.createElement("td");
    content.append(Object.assign(document.createElement("pre"), { textContent: m.text || "" }), ...partsOf(m));
    tr.append(content);
    return tr;
  }));
}

const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

function renderRuns(page) {
  $("pg-runs").replaceChildren(...page.map((r) => {
    const li = document.createElement("li");
    li.dataset.testid = "pg-run";
    li.className = r.runId === state.run ? "selected" : "";
    li.append(`${r.name} — ${r.status}`, Object.assign(document.createElement("small"), {
      textContent: [r.userId, time(r.createdAt), r.runId].join(" · ") }));
    li.onclick = () => pickRun(r.runId);
    return li;
  }));
}

function pickRun(runId) {
  state.run = runId;
  renderRuns(state.runs || []);
  if (state.runSub) state.runSub();
  state.runSub = state.client.subscribe("workflows.get", { runId }, renderRun);
}

function outcome(value) {
  return value === undefined ? "" : JSON.stringify(value);
}

function renderRun(run) {
  $("run-title").textContent = `Workflow run ${run.name} (${run.runId})`;
  $("run-summary").textContent = [`status: ${run.status}`, `user: ${run.userId}`, `args: ${outcome(run.args)}`,
    run.status === "completed" ? `result: ${outcome(run.result)}` : "", run.error ? `error: ${run.error.message}` : "",
    run.parent ? `child of ${run.parent} (step ${run.parentStep})` : "", run.eventsKept ? `events kept: ${run.eventsKept}` : ""]
    .filter(Boolean).join("\n");
  $("steps").replaceChildren(...run.steps.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "pg-step";
    const took = s.finishedAt && s.firstStartedAt ? `${s.finishedAt - s.firstStartedAt} ms` : "";
    const detail = s.error ? `${s.errorKind}: ${s.error}` : s.result !== undefined ? outcome(s.result)
      : [s.event ? `waits for "${s.event}"` : "", s.child ? `child run ${s.child}` : "",
         s.dueAt && s.status !== "running" ? `due ${time(s.dueAt)}` : "", s.lastError ? `last error: ${s.lastError}` : ""]
        .filter(Boolean).join(" · ");
    const shown = detail.length > 400 ? detail.slice(0, 400) + "…" : detail;
    for (const v of [s.id, s.kind, s.name, s.status, `${s.attempt}/${s.attempts}`, time(s.firstStartedAt), took, shown]) {
      const td = document.createElement("td");
      td.append(Object.assign(document.createElement("pre"), { textContent: String(v) }));
      tr.append(td);
    }
    tr.lastChild.title = detail;  // the whole of it
    return tr;
  }));
}

async function main() {
  state.token = await token();
  try {
    state.agents = (await api("/api/agents")).agents;
    await loadUsers();  // a token without the admin claim is refused here: the sign-in form says so
  } catch (e) {
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  state.client = new ChatClient(`${proto}//${location.host}/ws`, { token: state.token });
  state.client.onStatus((s) => { $("pg-conn").textContent = s; if (s === "unauthorized") signOut("The token was refused."); });
  window.playground = state;  // for debugging and tests
  for (const sel of [$("send-agent"), $("ctx-agent")]) for (const a of state.agents) sel.append(new Option(a.name, a.name));
  await loadNamespaces();
  $("pg-users-refresh").onclick = loadUsers;
  state.runsSub = state.client.subscribe("admin.workflows", { paginationOpts: { numItems: 50 } }, (v) => {
    state.runs = v.page;
    renderRuns(v.page);
  });
  $("pg-send").onclick = async () => {
    if (!state.thread) return ($("send-result").textContent = "Pick a thread first.");
    try {
      const out = await api(`/api/admin/threads/${state.thread.threadId}/send`,
        { prompt: $("pg-prompt").value, agentName: $("send-agent").value, saveMessages: $("save").value });
      $("send-result").textContent = JSON.stringify(out, null, 1);
    } catch (e) { $("send-result").textContent = String(e); }
  };
  $("pg-context").onclick = async () => {
    if (!state.thread) return ($("context-result").textContent = "Pick a thread first.");
    try {
      const agent = state.agents.find((a) => a.name === $("ctx-agent").value);
      const out = await api(`/api/admin/threads/${state.thread.threadId}/context`, {
        agentName: agent.name,
        prompt: $("ctx-prompt").value || undefined,
        contextOptions: { ...agent.contextOptions, recentMessages: Number($("recent").value),
                          excludeToolMessages: $("exclude-tools").checked },
      });
      showPassages(out.messages);
      $("context-result").textContent = JSON.stringify(out.chat, null, 1);
    } catch (e) { $("context-result").textContent = String(e); }
  };
}

main();
