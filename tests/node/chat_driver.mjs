// Drives the AI SDK's own chat (AbstractChat: what React's useChat wraps) against our /api/chat,
// through DefaultChatTransport, and prints what it ends with as JSON lines. The SDK parses every
// chunk with its own schema (uiMessageChunkSchema) and builds the messages with its own reader.
//
//   node chat_driver.mjs '<plan JSON>'
//   plan: {base, token, threadId, agentName?, keepRunning?, steps: [{do: "send", text} | {do: "stop", text}
//          | {do: "resume"} | {do: "regenerate"} | {do: "edit", index, text} (sendMessage with the messageId
//          of the index-th user message: the SDK's edit)], answerTools?: {toolName: output},
//          decideTools?: {toolName: {approved, reason?}} (answers approval requests with addToolApprovalResponse)}
//   AI_SDK_MODULE: a module re-exporting another copy of the SDK (ai7/sdk.mjs: the current major).
const {
  AbstractChat, DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls,
  lastAssistantMessageIsCompleteWithApprovalResponses,
} = await import(process.env.AI_SDK_MODULE ?? "ai");

const plan = JSON.parse(process.argv[2]);

class State {
  constructor() { this.status = "ready"; this.error = undefined; this.messages = []; }
  pushMessage(m) { this.messages = this.messages.concat(m); }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(i, m) { this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)]; }
  snapshot(x) { return structuredClone(x); }
}

const chunks = [];
class RecordingTransport extends DefaultChatTransport {
  processResponseStream(stream) {
    return super.processResponseStream(stream).pipeThrough(new TransformStream({
      transform(chunk, controller) { chunks.push(chunk.type); controller.enqueue(chunk); },
    }));
  }
}

function newChat() {
  const transport = new RecordingTransport({
    api: `${plan.base}/api/chat`,
    headers: { Authorization: `Bearer ${plan.token}` },
    body: { agentName: plan.agentName, keepRunning: plan.keepRunning ?? false },
  });
  const chat = new AbstractChat({
    id: plan.threadId,
    transport,
    state: new State(),
    onToolCall: async ({ toolCall }) => {
      const answer = plan.answerTools?.[toolCall.toolName];
      if (answer !== undefined) {
        chat.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: answer });
      }
    },
    sendAutomaticallyWhen: (options) => lastAssistantMessageIsCompleteWithToolCalls(options)
      || lastAssistantMessageIsCompleteWithApprovalResponses(options),
    onError: () => {},
  });
  return chat;
}

// a person at the page deciding on every approval request the reply ends with (the SDK then sends)
const decide = async (chat) => {
  const last = chat.messages.at(-1);
  for (const part of last?.role === "assistant" ? last.parts : []) {
    const decision = plan.decideTools?.[part.type.replace(/^tool-/, "")];
    if (part.state === "approval-requested" && decision !== undefined) {
      await chat.addToolApprovalResponse({ id: part.approval.id, ...decision });
    }
  }
};

const settle = async (chat) => {
  for (let i = 0; i < 600 && (chat.status === "submitted" || chat.status === "streaming"); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
};

let chat = newChat();
for (const step of plan.steps) {
  chunks.length = 0;
  if (step.do === "send") {
    await chat.sendMessage({ text: step.text, ...(step.metadata ? { metadata: step.metadata } : {}) });
  } else if (step.do === "stop") {
    const sending = chat.sendMessage({ text: step.text });
    for (let i = 0; i < 400; i++) {  // stop once some text has arrived
      const last = chat.messages.at(-1);
      if (last?.role === "assistant" && last.parts.some((p) => p.type === "text" && p.text.length > 0)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    await chat.stop();
    await sending;
  } else if (step.do === "resume") {
    chat = newChat();  // a reloaded page: no messages, the same chat id
    await chat.resumeStream();
  } else if (step.do === "regenerate") {
    await chat.regenerate();
  } else if (step.do === "edit") {
    const edited = chat.messages.filter((m) => m.role === "user")[step.index];
    await chat.sendMessage({ text: step.text, messageId: edited.id });
  }
  await settle(chat);
  if (plan.decideTools) {
    await decide(chat);
    await settle(chat);
  }
  console.log(JSON.stringify({ step: step.do, status: chat.status, error: chat.error?.message ?? null,
                               chunks: [...chunks], messages: chat.messages }));
}
