const $ = (id) => document.getElementById(id);
const state = { token: null, user: null, thread: null, agents: [], namespace: null, run: null };

async function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) localStorage.setItem("threadline.adminToken", hash.get("token"));
  const saved = localStorage.getItem("threadline.adminToken");
  if (saved) return saved;
  const dev = await fetch("/api/dev-token?admin=1");
  if (dev.ok) return (await dev.json()).token;
  const pasted = prompt("Admin token (python -m server token ops --admin)");
  if (pasted) localStorage.setItem("threadline.adminToken", pasted);
  return pasted;
}

async function api(path, body) {
  const init = { headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" } };
  if (body !== undefined) Object.assign(init, { method: "POST", body: JSON.stringify(body) });
  const res = await fetch(path, init);
  const data = await res.json();
  if (!res.ok) throw new Error(`${data.code}: ${data.message}`);
  return data;
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
  list($("users"), users, (u) => u, (u) => u === state.user, pickUser);
}

async function pickUser(user) {
  state.user = user;
  await loadUsers();
  const { page } = await api(`/api/admin/users/${encodeURIComponent(user)}/threads`);
  list($("pg-threads"), page, (t) => t.title || t.threadId, (t) => t.threadId === state.thread?.threadId, pickThread);
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

async function pickThread(thread) {
  state.thread = thread;
  $("thread-title").textContent = `Messages of “${thread.title || thread.threadId}”`;
  await pickUser(state.user);
  await loadMessages();
}

function content(m) {
  const parts = (m.parts || []).filter((p) => !["text", "file", "image"].includes(p.type));
  return (m.text || "") + (parts.length ? "\n" + JSON.stringify(parts, null, 1) : "") + (m.error ? `\nerror: ${m.error}` : "");
}

const links = new Map();  // fileId -> promise of a signed link (the page re-renders every second)
function fileLink(fileId) {
  if (!links.has(fileId)) links.set(fileId, api(`/api/files/${fileId}/url`, {}).then((link) => link.url));
  return links.get(fileId);
}

/** File and image parts as links (an admin token may read any file). */
function fileLinks(m) {
  const files = (m.parts || []).filter((p) => p.type === "file" || p.type === "image");
  return files.map((p) => {
    const a = Object.assign(document.createElement("a"), { className: "pg-file", target: "_blank", rel: "noopener",
      textContent: `${p.type}: ${p.filename || p.fileId || p.url} (${p.mimeType || "?"})` });
    a.dataset.testid = "pg-file";
    if (p.fileId) fileLink(p.fileId).then((url) => { a.href = url; }, () => {});
    else a.href = p.url;
    return a;
  });
}

async function loadMessages() {
  if (!state.thread) return;
  const { page } = await api(`/api/admin/threads/${state.thread.threadId}/messages?numItems=100`);
  $("rows").replaceChildren(...page.reverse().map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.testid = "pg-row";
    for (const v of [m.order, m.stepOrder, m.role, m.status, m.agentName || "", m.model || "",
                     m.usage ? `${m.usage.promptTokens}+${m.usage.completionTokens}` : "", content(m)]) {
      const td = document.createElement("td");
      td.append(Object.assign(document.createElement("pre"), { textContent: String(v) }));
      tr.append(td);
    }
    tr.lastChild.append(...fileLinks(m));
    return tr;
  }));
}

const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");

async function loadRuns() {
  const { page } = await api("/api/admin/workflows?numItems=50");
  $("pg-runs").replaceChildren(...page.map((r) => {
    const li = document.createElement("li");
    li.dataset.testid = "pg-run";
    li.className = r.runId === state.run ? "selected" : "";
    li.append(`${r.name} — ${r.status}`, Object.assign(document.createElement("small"), {
      textContent: [r.userId, time(r.createdAt), r.runId].join(" · ") }));
    li.onclick = () => { state.run = r.runId; loadRun(); loadRuns(); };
    return li;
  }));
}

function outcome(value) {
  return value === undefined ? "" : JSON.stringify(value);
}

async function loadRun() {
  if (!state.run) return;
  const run = await api(`/api/workflows/${encodeURIComponent(state.run)}`);
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
  state.agents = (await api("/api/agents")).agents;
  for (const sel of [$("send-agent"), $("ctx-agent")]) for (const a of state.agents) sel.append(new Option(a.name, a.name));
  await loadUsers();
  await loadNamespaces();
  $("pg-send").onclick = async () => {
    if (!state.thread) return ($("send-result").textContent = "Pick a thread first.");
    try {
      const out = await api(`/api/admin/threads/${state.thread.threadId}/send`,
        { prompt: $("pg-prompt").value, agentName: $("send-agent").value, saveMessages: $("save").value });
      $("send-result").textContent = JSON.stringify(out, null, 1);
    } catch (e) { $("send-result").textContent = String(e); }
    setTimeout(loadMessages, 300);
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
  await loadRuns();
  setInterval(loadMessages, 1000);  // follow generations while the page is open
  setInterval(() => { loadRuns(); loadRun(); }, 1000);
}

main();
