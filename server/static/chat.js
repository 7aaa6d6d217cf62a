import { ChatClient, SmoothText } from "/client.js";
import { renderMarkdown } from "/static/markdown.js";

const $ = (id) => document.getElementById(id);
const state = { client: null, view: null, threadId: null, threads: [], smooth: new Map(), elements: new Map(),
                bannerTimer: null, humanTools: new Set(), forks: new Map(), reader: false };

async function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    localStorage.setItem("threadline.token", hash.get("token"));
    hash.delete("token");  // keep the token out of the address bar, keep the rest (thread=)
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  const saved = localStorage.getItem("threadline.token");
  if (saved) return saved;
  const dev = await fetch("/api/dev-token");
  if (dev.ok) return (await dev.json()).token;
  return null;
}

function showBanner(text, retryAfterMs) {
  clearInterval(state.bannerTimer);
  const banner = $("banner");
  const until = retryAfterMs ? Date.now() + retryAfterMs : 0;
  const paint = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    banner.textContent = until ? `${text} You can retry in ${left}s.` : text;
    if (until && left === 0) { clearInterval(state.bannerTimer); banner.classList.remove("shown"); }
  };
  paint();
  banner.classList.add("shown");
  if (until) state.bannerTimer = setInterval(paint, 250);
}

function iconButton(label, title, testid, onClick) {
  const button = Object.assign(document.createElement("button"), { textContent: label, title });
  button.dataset.testid = testid;
  button.onclick = (e) => { e.stopPropagation(); onClick(); };
  return button;
}

function renderThreads() {
  const list = $("threads");
  list.replaceChildren(...state.threads.map((t) => {
    const li = document.createElement("li");
    li.dataset.testid = "thread";
    li.dataset.threadId = t.threadId;
    li.className = t.threadId === state.threadId ? "selected" : "";
    const name = document.createElement("span");
    name.textContent = t.title || "Untitled";
    const rename = iconButton("✎", "Rename", "rename", async () => {
      const title = prompt("New title", t.title);
      if (title !== null) await state.client.mutate("threads.update", { threadId: t.threadId, title });
    });
    const del = iconButton("×", "Delete", "delete", async () => {
      if (!confirm(`Delete "${t.title || "Untitled"}"?`)) return;
      await state.client.mutate("threads.delete", { threadId: t.threadId });
      if (state.threadId === t.threadId) selectThread(null);
    });
    li.append(name, rename, del);
    li.onclick = () => { selectThread(t.threadId); document.body.classList.remove("menu-open"); };
    return li;
  }));
  const current = state.threads.find((t) => t.threadId === state.threadId);
  $("title").textContent = current ? current.title || "Untitled" : "Pick or start a chat";
  const taken = current && current.takeover;
  $("takeover").textContent = taken ? `${taken.metadata?.name || taken.agentName} (a person) answers here` : "";
  const members = (current && current.members) || [];
  const mine = !!current && current.userId === state.client.userId;
  $("members").textContent = members.length
    ? `Shared: ${current.userId} (owner), ${members.map((m) => `${m.userId} (${m.role})`).join(", ")}` : "";
  $("share").hidden = !mine;
  const reader = state.reader = members.some((m) => m.userId === state.client.userId && m.role === "reader");
  $("prompt").disabled = reader;
  $("prompt").placeholder = reader ? "You can read this chat, not write in it" : "Write a message";
}

/** The owner lets someone in: "bob" (a writer: sends, is answered) or "bob reader" (watches). */
async function share() {
  const asked = prompt("Share this chat with (a user id; add \" reader\" for read-only)");
  if (!asked || !asked.trim()) return;
  const [userId, role = "writer"] = asked.trim().split(/\s+/);
  try {
    await state.client.mutate("threads.members.add", { threadId: state.threadId, userId, role });
  } catch (e) {
    showBanner(`Could not share: ${e.message || e}`);
  }
}

function renderPresence(presence) {
  const others = presence.viewers.filter((v) => v.userId !== state.client.userId || v.connections > 1);
  $("viewers").textContent = others.length
    ? "Here: " + presence.viewers.map((v) => v.userId + (v.connections > 1 ? ` (${v.connections} tabs)` : "")).join(", ")
    : "";
  const typists = presence.typists();
  $("typing").textContent = typists.length
    ? `${typists.map((v) => v.userId).join(", ")} ${typists.length > 1 ? "are" : "is"} typing…` : "";
}

function selectThread(threadId) {
  if (state.view) state.view.close();
  if (state.presence) state.presence.close();
  if (state.unwatchForks) state.unwatchForks();
  state.view = state.presence = state.unwatchForks = null;
  state.forks = new Map();
  for (const id of ["viewers", "typing"]) $(id).textContent = "";
  state.threadId = threadId;
  watchCanvas(threadId);
  state.elements.clear();
  state.smooth.clear();
  if (threadId) {
    location.hash = "thread=" + threadId;
    $("messages").replaceChildren();
    state.view = state.client.watchThread(threadId, renderMessages, { numItems: 30 });
    state.presence = state.client.presence(threadId, renderPresence);
    state.unwatchForks = state.client.subscribe("messages.branches", { threadId }, (value) => {
      // each fork by the order of the version shown: its user message carries the "‹ 2/3 ›" switch
      state.forks = new Map(value.forks.map((f) => [f.versions.find((v) => v.active).order, f]));
      if (state.view) renderMessages(state.view);
    });
  } else {
    $("messages").replaceChildren(Object.assign(document.createElement("p"), { className: "empty", textContent: "No chat selected." }));
  }
  renderThreads();
}

function messageElement(m, context) {
  let el = state.elements.get(m.messageId);
  if (!el) {
    el = document.createElement("div");
    el.append(Object.assign(document.createElement("div"), { className: "body" }));
    state.elements.set(m.messageId, el);
  }
  el.className = `msg ${m.role}`;
  el.dataset.testid = "message";
  el.dataset.role = m.role;
  el.dataset.status = m.streaming ? "streaming" : m.status;
  el.dataset.messageId = m.messageId;
  if (m.clientMessageId) el.dataset.clientMessageId = m.clientMessageId;
  const body = el.firstChild;
  body.dataset.testid = "text";
  if (m.role === "assistant" && (m.streaming || state.smooth.has(m.messageId))) {
    let smooth = state.smooth.get(m.messageId);
    if (!smooth) {
      smooth = new SmoothText((text) => followingTheEnd(() => {
        if (body.shownText !== text) { body.shownText = text; renderMarkdown(body, text); }
        body.dataset.revealing = String(text.length < smooth.target.length);  // the rest still coming
      }));
      state.smooth.set(m.messageId, smooth);
    }
    smooth.update(m.text || "", { streaming: !!m.streaming });
    body.classList.toggle("cursor", !!m.streaming);
  } else if (m.role === "assistant") {
    const text = m.text || describeParts(m.parts || []);
    if (body.shownText !== text) { body.shownText = text; renderMarkdown(body, text); }
  } else if (m.role === "tool") {
    body.textContent = (m.parts || []).map((p) => (p.type === "tool-approval-response"
      ? (p.approved ? "Allowed" : `Denied${p.reason ? ": " + p.reason : ""}`)
      : `${p.toolName} → ${JSON.stringify(p.result)}`)).join("\n");
  } else {
    body.textContent = m.text || describeParts(m.parts || []);
  }
  // a person answering (a human agent), or another member of a shared thread
  const who = m.role === "assistant" ? m.metadata && m.metadata.name
    : m.role === "user" && m.userId && m.userId !== state.client.userId ? m.userId : "";
  el.dataset.author = who || "";
  for (const extra of [...el.children].slice(1)) if (!extra.classList.contains("ask")) extra.remove();
  const calls = (m.parts || m.toolParts || []).filter((p) => p.type === "tool-call");
  for (const p of calls) {
    const waiting = !m.streaming && state.humanTools.has(p.toolName) && !context.answered.has(callKey(m.order, p.toolCallId));
    if (waiting) {
      const ask = askElement(el, m, p, context);
      if (ask.parentNode !== el) el.append(ask);  // moving it would take the focus from its answer
    } else {
      el.append(Object.assign(document.createElement("span"), { className: "tool-part", textContent: `${p.toolName}(${JSON.stringify(p.args)})` }));
    }
  }
  const approvals = (m.parts || []).filter((p) => p.type === "tool-approval-request");
  for (const p of approvals) {
    if (!m.streaming && !context.decided.has(p.approvalId) && !context.answered.has(callKey(m.order, p.toolCallId))) {
      const card = approvalElement(el, p);
      if (card.parentNode !== el) el.append(card);
    }
  }
  for (const ask of el.querySelectorAll(".ask")) {
    const gone = ask.dataset.approvalId ? context.decided.has(ask.dataset.approvalId)
      : !calls.some((p) => p.toolCallId === ask.dataset.toolCallId);
    if (gone || context.answered.has(callKey(m.order, ask.dataset.toolCallId))) ask.remove();
  }
  if (m.role === "user" && m.messageId && !m.optimistic) {
    const fork = state.forks.get(m.order);
    if (fork && fork.versions.some((v) => v.messageId === m.messageId)) el.append(versionsElement(fork));
    if (!state.reader && (!m.userId || m.userId === state.client.userId)) {
      el.append(iconButton("✎", "Edit: send a new version (this one stays as a branch)", "edit", () => editMessage(m)));
    }
  }
  const attached = (m.parts || []).filter((p) => p.type === "image" || p.type === "file");
  if (attached.length) {  // kept across renders (a reply streaming next to it re-renders the list)
    const key = attached.map((p) => p.fileId || p.url).join(" ");
    if (el.filesKey !== key) { el.filesKey = key; el.filesBox = filesElement(attached); }
    el.append(el.filesBox);
  }
  const cited = (m.parts || []).filter((p) => p.type === "source");
  if (cited.length) {
    const box = Object.assign(document.createElement("div"), { className: "sources" });
    for (const s of cited) {
      const chip = Object.assign(document.createElement("span"), {
        className: "source", title: s.excerpt || "",
        textContent: `[${s.sourceId}] ${s.title || s.key}${s.heading ? " · " + s.heading : ""}`,
      });
      chip.dataset.testid = "source";
      box.append(chip);
    }
    el.append(box);
  }
  if (m.status === "failed" || m.error) {
    const text = m.error || "failed";
    el.append(Object.assign(document.createElement("span"), { className: "error", textContent: text }));
    el.lastChild.dataset.testid = "error";
  }
  if (m.role === "assistant" && !m.streaming && m.agentName) {
    el.append(Object.assign(document.createElement("span"), { className: "meta", textContent: `${m.agentName}${m.model ? " · " + m.model : ""}` }));
  }
  return el;
}

/**
 * A tool a person must answer (a human tool): its question and a form; the answer goes back as the
 * tool's result and the reply goes on. Kept across renders so typing is not lost.
 */
function askElement(el, m, call, context) {
  let form = [...el.querySelectorAll(".ask")].find((f) => f.dataset.toolCallId === call.toolCallId);
  if (form) return form;
  form = Object.assign(document.createElement("form"), { className: "ask" });
  form.dataset.testid = "ask";
  form.dataset.toolCallId = call.toolCallId;
  const args = call.args || {};
  const question = typeof args.question === "string" ? args.question : JSON.stringify(args);
  form.append(Object.assign(document.createElement("label"), { textContent: `${call.toolName}: ${question}` }));
  const answer = Object.assign(document.createElement("textarea"), { rows: 2, placeholder: "Your answer" });
  answer.dataset.testid = "ask-answer";
  const submit = Object.assign(document.createElement("button"), { type: "submit", className: "primary", textContent: "Answer" });
  submit.dataset.testid = "ask-submit";
  form.append(answer, submit);
  form.onsubmit = async (e) => {
    e.preventDefault();
    const prompt = context.prompts.get(m.order);
    if (!answer.value.trim() || !prompt) return;
    submit.disabled = true;
    try {
      await state.client.mutate("messages.send", {
        threadId: state.threadId, promptMessageId: prompt, agentName: m.agentName || undefined,
        message: { role: "tool", content: [{ type: "tool-result", toolCallId: call.toolCallId, toolName: call.toolName,
                                             result: answer.value.trim() }] },
      });
    } catch (error) {
      submit.disabled = false;
      showBanner(`Could not answer: ${error.message}`, error.retryAfterMs);
    }
  };
  return form;
}

/**
 * A tool call waiting for approval: what it would do, Allow and Deny. The first decision of any tab
 * stands; the card goes once a decision is in the thread (here or in another tab).
 */
function approvalElement(el, call) {
  let card = [...el.querySelectorAll(".approval")].find((c) => c.dataset.approvalId === call.approvalId);
  if (card) return card;
  card = Object.assign(document.createElement("div"), { className: "ask approval" });
  card.dataset.testid = "approval";
  card.dataset.approvalId = call.approvalId;
  card.dataset.toolCallId = call.toolCallId;
  card.append(Object.assign(document.createElement("label"), { textContent: `Allow ${call.toolName}(${JSON.stringify(call.args || {})})?` }));
  const buttons = [["Allow", true, "primary"], ["Deny", false, ""]].map(([label, approved, className]) => {
    const button = Object.assign(document.createElement("button"), { type: "button", className, textContent: label });
    button.dataset.testid = approved ? "approval-allow" : "approval-deny";
    button.onclick = async () => {
      for (const b of buttons) b.disabled = true;
      try {
        await state.client.mutate("tools.approve", { threadId: state.threadId, approvalId: call.approvalId, approved });
      } catch (error) {
        for (const b of buttons) b.disabled = false;
        showBanner(`Could not decide: ${error.message}`, error.retryAfterMs);
      }
    };
    return button;
  });
  card.append(...buttons);
  return card;
}

/** Images inline, other files as chips; both through short-lived signed links. */
function filesElement(parts) {
  const box = Object.assign(document.createElement("div"), { className: "files" });
  for (const p of parts) {
    const name = p.filename || p.fileId || p.url;
    const link = p.fileId ? state.client.fileUrl(p.fileId) : Promise.resolve(p.url);
    if (p.type === "image") {
      const img = Object.assign(document.createElement("img"), { alt: name, title: name });
      img.dataset.testid = "message-image";
      link.then((url) => { img.src = url; }, () => { img.alt = `${name} (unavailable)`; });
      box.append(img);
    } else {
      const chip = Object.assign(document.createElement("a"), { className: "file-chip", textContent: name,
                                                                target: "_blank", rel: "noopener" });
      chip.dataset.testid = "message-file";
      link.then((url) => { chip.href = url; }, () => {});
      box.append(chip);
    }
  }
  return box;
}

// -- attachments: picked, pasted or dropped files upload at once, with a preview and progress --

const tray = [];  // {file, record?, progress, error?, preview?}

function renderTray() {
  const box = $("tray");
  box.hidden = tray.length === 0;
  box.replaceChildren(...tray.map((a) => {
    const el = Object.assign(document.createElement("div"), { className: "attachment" + (a.error ? " failed" : "") });
    el.dataset.testid = "attachment";
    el.dataset.state = a.error ? "failed" : a.record ? "uploaded" : "uploading";
    if (a.preview) el.append(Object.assign(document.createElement("img"), { src: a.preview, alt: a.file.name }));
    el.append(Object.assign(document.createElement("span"), { className: "name", textContent: a.error || a.file.name }));
    if (!a.record && !a.error) el.append(Object.assign(document.createElement("progress"), { max: 1, value: a.progress }));
    el.append(iconButton("×", "Remove", "remove-attachment", () => {
      tray.splice(tray.indexOf(a), 1);
      if (a.preview) URL.revokeObjectURL(a.preview);
      renderTray();
    }));
    return el;
  }));
  updateSend();
}

// -- rate limits: the live status says when the next message may go; Send waits until then --

function updateSend() {
  const left = Math.max(0, (state.waitUntil || 0) - Date.now());
  $("send").disabled = left > 0 || tray.some((a) => !a.record && !a.error);
  $("send-wait").hidden = left === 0;
  $("send-wait").textContent = left ? `You can send in ${Math.ceil(left / 1000)}s` : "";
  return left;
}

function watchLimits() {
  if (state.limitsSub) state.limitsSub();
  state.limitsSub = state.client.subscribe("rateLimit.status", { agentName: $("agent").value || undefined }, (v) => {
    state.waitUntil = v.canSend ? 0 : Date.now() + v.retryAfterMs;
    clearInterval(state.waitTimer);
    if (updateSend() > 0) state.waitTimer = setInterval(() => { if (updateSend() === 0) clearInterval(state.waitTimer); }, 250);
  });
}

function attach(files) {
  for (const file of files) {
    const a = { file, progress: 0, preview: file.type.startsWith("image/") ? URL.createObjectURL(file) : null };
    tray.push(a);
    state.client.uploadFile(file, { onProgress: (f) => { a.progress = f; renderTray(); } })
      .then((record) => { a.record = record; }, (error) => { a.error = error.message; })
      .finally(renderTray);
  }
  renderTray();
}

function callKey(order, toolCallId) {
  return `${order}/${toolCallId}`;
}

/** "‹ 2/3 ›" under an edited message: which version is shown, and a switch to the others. */
function versionsElement(fork) {
  const at = fork.versions.findIndex((v) => v.active);
  const box = Object.assign(document.createElement("span"), { className: "versions" });
  box.dataset.testid = "versions";
  const go = (i) => state.client.mutate("messages.switchBranch", { threadId: state.threadId, order: fork.versions[i].order })
    .catch((error) => showBanner(`Could not switch: ${error.message}`));
  const prev = iconButton("‹", "Earlier version", "version-prev", () => go(at - 1));
  const next = iconButton("›", "Later version", "version-next", () => go(at + 1));
  prev.disabled = at === 0 || state.reader;
  next.disabled = at === fork.versions.length - 1 || state.reader;
  const label = Object.assign(document.createElement("span"), { textContent: `${at + 1}/${fork.versions.length}` });
  label.dataset.testid = "version-index";
  box.append(prev, label, next);
  return box;
}

async function editMessage(m) {
  const text = prompt("Edit your message (the earlier version and its answer stay as a branch)", m.text || "");
  if (text === null || !text.trim() || text === m.text) return;
  try {
    await state.client.mutate("messages.edit", { messageId: m.messageId, prompt: text.trim(),
                                                 agentName: $("agent").value || undefined });
  } catch (error) {
    showBanner(error.code === "rate_limited" ? "You are sending too fast." : `Could not edit: ${error.message}`,
               error.retryAfterMs);
  }
}

/** Run ``change`` (which may make the list taller); a list that showed its end before shows it after. */
function followingTheEnd(change) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  change();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function describeParts(parts) {
  return parts.map((p) => (p.type === "object" ? JSON.stringify(p.object, null, 2) : p.text || "")).join("");
}

function renderMessages(view) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const previousHeight = box.scrollHeight;
  const shown = view.messages();
  const keep = new Set(shown.map((m) => m.messageId));
  for (const [id, el] of state.elements) if (!keep.has(id)) { el.remove(); state.elements.delete(id); state.smooth.delete(id); }
  const children = [];
  state.older ||= Object.assign(document.createElement("p"), { id: "older", textContent: "Scroll up for older messages" });
  if (!view.isDone) children.push(state.older);
  const context = {
    // a tool call is known by its order too: models number their calls per reply, so ids repeat across turns
    answered: new Set(shown.flatMap((m) => (m.parts || []).filter((p) => p.type === "tool-result").map((p) => callKey(m.order, p.toolCallId)))),
    decided: new Set(shown.flatMap((m) => (m.parts || []).filter((p) => p.type === "tool-approval-response").map((p) => p.approvalId))),
    prompts: new Map(shown.filter((m) => m.role === "user" && m.messageId && !m.optimistic).map((m) => [m.order, m.messageId])),
  };
  for (const m of shown) children.push(messageElement(m, context));
  placeChildren(box, children);
  if (atBottom) box.scrollTop = box.scrollHeight;
  else if (state.loadingOlder) box.scrollTop += box.scrollHeight - previousHeight;
  state.loadingOlder = false;
  $("stop").hidden = !view.streaming();
  if (view.error) showBanner(view.error.message);
}

async function send(event) {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (tray.some((a) => !a.record && !a.error)) return;  // uploads still running
  const wait = (state.waitUntil || 0) - Date.now();
  if (wait > 0) return showBanner("You are sending too fast.", wait);  // the rate limit's status said so
  const files = tray.filter((a) => a.record).map((a) => a.record);
  if ((!text && !files.length) || !state.view) return;
  $("prompt").value = "";
  if (state.presence) state.presence.stoppedTyping();
  tray.splice(0).forEach((a) => a.preview && URL.revokeObjectURL(a.preview));
  renderTray();
  try {
    await state.view.sendMessage(text, { agentName: $("agent").value || undefined, files });
  } catch (error) {
    showBanner(error.code === "rate_limited" ? "You are sending too fast." : `Could not send: ${error.message}`,
               error.retryAfterMs);
  }
}

async function main() {
  const tok = await token();
  if (!tok) {
    $("signin").style.display = "block";
    $("composer").style.display = "none";
    $("messages").style.display = "none";
    $("token-save").onclick = () => { localStorage.setItem("threadline.token", $("token-input").value.trim()); location.reload(); };
    return;
  }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  state.client = new ChatClient(`${proto}//${location.host}/ws`, { token: tok });
  window.threadline = state;  // for debugging and tests
  state.client.onStatus((status) => {
    const shown = { open: "Connected", connecting: "Reconnecting…", closed: "Offline", unauthorized: "Signed out" };
    $("conn").textContent = shown[status] || status;
    $("conn").dataset.status = status;
    if (status === "unauthorized") { localStorage.removeItem("threadline.token"); showBanner("Your token was refused; reload to sign in again."); }
  });
  const agents = await fetch("/api/agents", { headers: { Authorization: `Bearer ${tok}` } });
  if (agents.ok) {
    for (const a of (await agents.json()).agents) {
      $("agent").append(new Option(a.name, a.name));
      for (const name of a.humanTools || []) state.humanTools.add(name);
    }
  }
  watchLimits();
  $("agent").onchange = watchLimits;
  state.client.subscribe("threads.list", { paginationOpts: { numItems: 100 } }, (value) => {
    state.threads = value.page;
    renderThreads();
  });
  watchMemory();
  $("new-thread").onclick = async () => {
    const { threadId } = await state.client.mutate("threads.create", { title: "New chat" });
    selectThread(threadId);
    document.body.classList.remove("menu-open");
  };
  $("composer").onsubmit = send;
  $("share").onclick = share;
  $("menu").onclick = () => document.body.classList.toggle("menu-open");
  $("scrim").onclick = () => document.body.classList.remove("menu-open");
  $("attach").onclick = () => $("file-input").click();
  $("file-input").onchange = () => { attach([...$("file-input").files]); $("file-input").value = ""; };
  $("prompt").onpaste = (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) { e.preventDefault(); attach(files); }
  };
  const main = document.querySelector("main");
  main.ondragover = (e) => { if (e.dataTransfer?.types.includes("Files")) { e.preventDefault(); main.classList.add("dragging"); } };
  main.ondragleave = () => main.classList.remove("dragging");
  main.ondrop = (e) => {
    main.classList.remove("dragging");
    if (e.dataTransfer?.files.length) { e.preventDefault(); attach([...e.dataTransfer.files]); }
  };
  $("prompt").onkeydown = (e) => { if (e.key === "Enter" && !e.shiftKey) send(e); };
  $("prompt").oninput = () => state.presence && ($("prompt").value ? state.presence.typed() : state.presence.stoppedTyping());
  $("stop").onclick = () => state.view && state.view.abort();
  $("messages").onscroll = () => {
    if ($("messages").scrollTop < 30 && state.view && state.view.loadMore()) state.loadingOlder = true;
  };
  const wanted = new URLSearchParams(location.hash.slice(1)).get("thread");
  if (wanted) selectThread(wanted);
}

// The user's working memory (what agents with `working_memory` keep about them): live, and theirs to
// rewrite; a save names the version it was made from, so an agent's change made meanwhile is not lost.
function watchMemory() {
  const box = $("memory-text");
  let shown = { text: "", version: 0 };
  let base = shown;  // what an edit started from
  box.onfocus = () => { if (box.value === shown.text) base = shown; };
  state.client.subscribe("memory.working", { history: 1 }, (memory) => {
    const editing = box.value !== shown.text;
    shown = memory;
    if (!editing) { box.value = memory.text; base = memory; }
    const by = memory.history[0]?.by;
    $("memory-info").textContent = memory.version ? `version ${memory.version}${by ? ", by " + by : ""}` : "";
  });
  $("memory-save").onclick = async () => {
    try {
      await state.client.mutate("memory.setWorking", { text: box.value, expectedVersion: base.version });
    } catch (err) {
      showBanner(err.code === "conflict" ? "Your memory changed meanwhile: it is shown again, edit it once more."
        : `Could not save: ${err.message}`);
      box.value = shown.text;
      base = shown;
    }
  };
}

// The thread's draft canvas: elements edited one at a time, each edit kept as a snippet with the state
// before and after (listed below, live) that can be undone; an agent with canvas tools edits the same
// canvas and finds these edits in its context ("undo the last change to the title").
const CANVAS = "draft";

function watchCanvas(threadId) {
  if (state.unwatchCanvas) state.unwatchCanvas();
  state.unwatchCanvas = null;
  state.canvasRows = new Map();
  state.canvas = { version: 0, elements: [] };
  $("canvas-elements").replaceChildren();
  $("canvas-edits").replaceChildren();
  $("canvas-info").textContent = "";
  $("canvas").hidden = !threadId;
  if (!threadId) return;
  const offCanvas = state.client.subscribe("canvas.get", { threadId, canvasId: CANVAS },
                                           (canvas) => renderCanvas(threadId, canvas));
  const offEdits = state.client.subscribe("snippets.list", { threadId, document: CANVAS, paginationOpts: { numItems: 20 } },
                                          (value) => renderEdits(value.page));
  state.unwatchCanvas = () => { offCanvas(); offEdits(); };
  $("canvas-add").onclick = () => {
    const taken = new Set(state.canvas.elements.map((e) => e.id));
    let n = 1;
    while (taken.has(`p${n}`)) n += 1;
    saveElement(threadId, { id: `p${n}`, kind: "paragraph", value: "" }, "");
  };
}

const shownValue = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 1));

/** Make ``children`` the children of ``box``, leaving it untouched when they are already there in
 * order: a node taken out and put back loses its focus (a form, a box someone is typing in). */
function placeChildren(box, children) {
  const same = children.length === box.children.length && children.every((c, i) => c === box.children[i]);
  if (!same) box.replaceChildren(...children);
}

function renderCanvas(threadId, canvas) {
  state.canvas = canvas;
  const elements = canvas.elements.length ? canvas.elements : [{ id: "title", kind: "title", value: "", unsaved: true }];
  const rows = elements.map((element) => {
    let row = state.canvasRows.get(element.id);
    if (!row) {
      const box = document.createElement("textarea");
      box.dataset.testid = `canvas-el-${element.id}`;
      const save = Object.assign(document.createElement("button"), { type: "button", textContent: "Save" });
      save.dataset.testid = `canvas-save-${element.id}`;
      const label = Object.assign(document.createElement("label"), { textContent: element.id });
      const el = document.createElement("div");
      el.className = "canvas-row";
      el.append(label, box, save);
      row = { el, box, save, shown: null, base: null };
      box.onfocus = () => { if (box.value === row.shown) row.base = row.element.value; };
      save.onclick = () => saveElement(threadId, row.element, row.base, row.box.value);
      state.canvasRows.set(element.id, row);
    }
    const editing = row.shown !== null && row.box.value !== row.shown;
    row.element = element;
    row.shown = shownValue(element.value);
    if (!editing) { row.box.value = row.shown; row.base = element.value; }
    row.el.dataset.kind = element.kind;
    return row.el;
  });
  for (const id of [...state.canvasRows.keys()]) {
    if (!elements.some((e) => e.id === id)) state.canvasRows.delete(id);
  }
  placeChildren($("canvas-elements"), rows);  // (an element being typed in keeps its focus and caret)
  $("canvas-info").textContent = canvas.version ? `version ${canvas.version}, by ${canvas.updatedBy}` : "";
}

async function saveElement(threadId, element, base, text = "") {
  const current = state.canvas.elements.find((e) => e.id === element.id);
  if (current && JSON.stringify(current.value) !== JSON.stringify(base)) {
    showBanner(`"${element.id}" changed meanwhile: it is shown again, edit it once more.`);
    const row = state.canvasRows.get(element.id);
    if (row) { row.box.value = row.shown; row.base = current.value; }
    return;
  }
  let value = text;
  if (current && typeof current.value !== "string") {
    try { value = JSON.parse(text); } catch { showBanner(`"${element.id}" holds JSON: ${text.slice(0, 40)} is not.`); return; }
  }
  try {
    await state.client.mutate("canvas.edit", { threadId, canvasId: CANVAS, target: element.id, value,
                                               kind: element.kind });
  } catch (err) {
    showBanner(`Could not save: ${err.message}`);
  }
}

function renderEdits(snippets) {
  $("canvas-edits").replaceChildren(...snippets.map((s) => {
    const li = document.createElement("li");
    li.dataset.testid = "canvas-edit";
    li.dataset.snippetId = s.snippetId;
    li.dataset.target = s.target || "";
    const short = (state) => (state ? shownValue(state.value).slice(0, 60) : "(none)");
    const what = Object.assign(document.createElement("span"), {
      textContent: `${s.by}: ${s.operation} ${s.target} (v${s.docVersion}) ${short(s.before)} → ${short(s.after)}`,
    });
    const undo = iconButton("Undo", "Put this element back as it was before this edit", "canvas-undo", async () => {
      try {
        await state.client.mutate("canvas.restore", { snippetId: s.snippetId });
      } catch (err) {
        showBanner(`Could not undo: ${err.message}`);
      }
    });
    li.append(what, undo);
    return li;
  }));
}

main();
