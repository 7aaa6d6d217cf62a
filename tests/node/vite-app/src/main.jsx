// A web app on its own origin, as a user writes one. The page's address says where the backend
// is, the user's token (from the app's identity provider), and which way to talk to it:
//   ?server=http://host:port&token=...&mode=chat   useChat from @ai-sdk/react (the AI SDK)
//   ?server=...&token=...&mode=hooks                @threadline/react's hooks over @threadline/client
// Each keeps its chat's id in the address, so a reload shows the chat again.
import { useChat } from "@ai-sdk/react";
import { ChatClient } from "@threadline/client";
import { ThreadlineProvider, useConnectionStatus, useSendMessage, useUIMessages } from "@threadline/react";
import { DefaultChatTransport } from "ai";
import { useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";

const params = new URLSearchParams(location.search);
const server = params.get("server");
const token = params.get("token");
const auth = { Authorization: `Bearer ${token}` };

function remember(key, value) {
  params.set(key, value);
  history.replaceState(null, "", `?${params}`);
}

function Composer({ onSend, disabled }) {
  const [text, setText] = useState("");
  return (
    <form onSubmit={(e) => { e.preventDefault(); onSend(text); setText(""); }}>
      <input aria-label="message" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit" disabled={disabled || !text}>Send</button>
    </form>
  );
}

function Message({ role, text }) {
  return <li className="message" data-role={role}>{text}</li>;
}

// useChat: a new chat gets the SDK's own generated id; the server makes the thread on the first send.
function Chat({ initial }) {
  const transport = useMemo(() => new DefaultChatTransport({ api: `${server}/api/chat`, headers: auth }), []);
  // the id given to useChat must not change (a new id is a new chat): a new chat passes none
  const [given] = useState(() => params.get("chat") ?? undefined);
  const { id, messages, sendMessage, status, error } = useChat({ id: given, messages: initial, transport });
  return (
    <main data-status={status}>
      <ul>{messages.map((m) => (
        <Message key={m.id} role={m.role} text={m.parts.filter((p) => p.type === "text").map((p) => p.text).join("")} />
      ))}</ul>
      {error && <p role="alert">{error.message}</p>}
      <Composer disabled={status !== "ready"} onSend={(text) => { remember("chat", id); sendMessage({ text }); }} />
    </main>
  );
}

function ChatPage() {
  const chatId = params.get("chat");
  const [initial, setInitial] = useState(chatId ? null : []);
  useEffect(() => {
    if (!chatId) return;
    fetch(`${server}/api/chat/${chatId}/messages`, { headers: auth })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`history: ${r.status}`))))
      .then((page) => setInitial(page.messages), (e) => setInitial(e));
  }, [chatId]);
  if (initial instanceof Error) return <p role="alert">{initial.message}</p>;
  return initial === null ? <p>Loading…</p> : <Chat initial={initial} />;
}

// The hooks: a live thread over the WebSocket; a send shows at once and the reply streams in.
function Thread({ threadId }) {
  const status = useConnectionStatus();
  const { results } = useUIMessages(threadId);
  const send = useSendMessage(threadId);
  const streaming = results.some((m) => m.streaming);
  return (
    <main data-status={streaming ? "streaming" : status === "open" ? "ready" : status}>
      <ul>{results.map((m) => <Message key={m.key} role={m.role} text={m.text} />)}</ul>
      <Composer disabled={status !== "open"} onSend={(text) => send(text)} />
    </main>
  );
}

function HooksPage() {
  const client = useMemo(() => new ChatClient(`${server.replace(/^http/, "ws")}/ws`, { token }), []);
  const [threadId, setThreadId] = useState(params.get("thread"));
  useEffect(() => {
    if (threadId) return;
    client.mutate("threads.create", { title: "From the Vite app" }).then(({ threadId: made }) => {
      remember("thread", made);
      setThreadId(made);
    });
  }, [threadId]);
  return (
    <ThreadlineProvider client={client}>{threadId ? <Thread threadId={threadId} /> : <p>Loading…</p>}</ThreadlineProvider>
  );
}

createRoot(document.getElementById("root")).render(params.get("mode") === "hooks" ? <HooksPage /> : <ChatPage />);
