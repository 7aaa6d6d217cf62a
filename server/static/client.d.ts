// Types of /client.js (threadline wire protocol v1).

export type Status = "connecting" | "open" | "closed" | "unauthorized";

export interface Part {
  type: "text" | "reasoning" | "tool-call" | "tool-result" | "object" | "file" | "image" | "refusal" | "source"
    | "tool-call-delta";
  text?: string;
  toolCallId?: string;
  toolName?: string;
  args?: unknown;
  result?: unknown;
  isError?: boolean;
  object?: unknown;
  argsTextDelta?: string; // tool-call-delta (deltas only)
  signature?: string; // reasoning, on a stored reply: the provider's seal on its thinking (Anthropic's)
  fileId?: string; url?: string; mimeType?: string; filename?: string; // file, image
  // source: a document passage the reply drew on (RAG), numbered as the model cited it
  sourceId?: string; namespace?: string; key?: string; title?: string; chunk?: number;
  heading?: string; excerpt?: string; score?: number;
}

export interface Usage {
  promptTokens: number; completionTokens: number; totalTokens: number;
  cachedTokens?: number; reasoningTokens?: number;
}

export interface FileRecord {
  fileId: string; userId: string; name: string; mediaType: string; size: number; hash: string;
  createdAt: number; refs: number;
}

export interface Message {
  messageId: string;
  threadId: string;
  userId: string;
  order: number;
  stepOrder: number;
  role: "user" | "assistant" | "tool" | "system";
  status: "pending" | "success" | "failed";
  text: string;
  parts: Part[];
  agentName?: string | null;
  model?: string | null;
  provider?: string | null;
  usage?: Usage | null;
  error?: string | null;
  finishReason?: string | null;
  clientMessageId?: string | null;
  createdAt: number;
  /** The app's own JSON: set by messages.send's `metadata` and messages.update. */
  metadata?: Record<string, unknown> | null;
}

/** Someone a thread's owner let in (threads.members.add): a writer sends and is answered, a reader watches. */
export interface Member { userId: string; role: "writer" | "reader"; joinedAt: number; }
/** messages.branches: a turn of the active branch followed by versions of an edited message (messages.edit);
 *  messages.switchBranch {threadId, order} shows another version. */
export interface Fork { parentOrder: number; versions: { order: number; messageId: string; active: boolean }[]; }

export interface Thread {
  /** userId: the owner's. */
  threadId: string; userId: string; title: string; summary: string;
  status: "active" | "archived"; metadata: Record<string, unknown>; createdAt: number; updatedAt: number;
  /** While a person answers instead of the agents (threads.takeover). */
  takeover?: { agentName: string; userId: string; metadata: Record<string, unknown> | null; at: number } | null;
  members?: Member[];
}

export interface StreamInfo {
  streamId: string; order: number; stepOrder: number; status: "streaming" | "finished" | "aborted";
  agentName: string | null; text: string; seq: number; messageId: string;
}

export interface Page<T> { page: T[]; continueCursor: string; isDone: boolean; streams?: StreamInfo[]; }

export interface DeltaFrame { type: "delta"; id: string; streamId: string; seq: number; parts: Part[]; }

/** One JSON Patch (RFC 6902) operation of a live query's `patch` frame. */
export type PatchOp =
  | { op: "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move"; from: string; path: string };

/** `value` with `ops` applied, as a new value sharing what did not change (`value` is left as it was). */
export declare function applyPatch<T>(value: T, ops: PatchOp[]): T;

export declare class MutationError extends Error {
  code: string;
  retryAfterMs?: number;
}

export interface ClientOptions {
  token: string | (() => string | Promise<string>);
  clientId?: string;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The WebSocket class to connect with (default: the platform's; none: the client stays closed). */
  WebSocket?: { new (url: string): WebSocket };
}

export declare class ChatClient {
  constructor(url: string, options: ClientOptions);
  readonly status: Status;
  readonly userId: string | null;
  onStatus(fn: (status: Status) => void): () => void;
  subscribe<T = unknown>(
    query: string,
    args: Record<string, unknown>,
    onResult: (value: T, version: number) => void,
    options?: {
      onError?: (error: MutationError) => void;
      onDelta?: (frame: DeltaFrame) => void;
      cursors?: () => Record<string, number>;
    },
  ): () => void;
  mutate<T = unknown>(name: string, args?: Record<string, unknown>, options?: { requestId?: string }): Promise<T>;
  watchThread(threadId: string, onChange: (view: ThreadView) => void,
              options?: { numItems?: number; agentName?: string; query?: "messages.list" | "admin.messages" }): ThreadView;
  /** POST /api/files (multipart); the server reads the type from the bytes. */
  uploadFile(file: Blob, options?: { name?: string; onProgress?: (fraction: number) => void }): Promise<FileRecord>;
  /** A short-lived signed link anyone holding it may GET (cached until a minute before it expires). */
  fileUrl(fileId: string): Promise<string>;
  /** This tab views the thread until close(); onChange whenever who is there or typing changes. */
  presence(threadId: string, onChange: (presence: Presence) => void, options?: { everyMs?: number }): Presence;
  dropConnection(): void;
  close(): void;
}

export interface Viewer {
  userId: string;
  connections: number;
  typing: boolean;
  typingForMs: number;
  /** Date.now() until which the user counts as typing (0: not typing). */
  typingUntil: number;
}

export declare class Presence {
  readonly threadId: string;
  readonly viewers: Viewer[];
  /** Users typing now, not this tab's own user unless includeMe. */
  typists(options?: { includeMe?: boolean }): Viewer[];
  /** Call on every keystroke. */
  typed(): void;
  stoppedTyping(): void;
  close(): void;
}

export interface ShownMessage extends Partial<Message> {
  messageId: string;
  text: string;
  streaming?: boolean;
  streamId?: string;
  toolParts?: Part[];
  toolInput?: Record<string, string>; // toolCallId -> arguments text so far
  object?: unknown;
  optimistic?: boolean;
  retryAfterMs?: number;
  status: "pending" | "success" | "failed" | "sending";
}

export declare class ThreadView {
  readonly threadId: string;
  readonly isDone: boolean;
  messages(): ShownMessage[];
  streaming(): boolean;
  loadMore(count?: number): boolean;
  /** ``files``: records from uploadFile; images go as image parts, others as file parts. */
  sendMessage(text: string, options?: { agentName?: string; files?: FileRecord[] }): Promise<{ messageId: string; order: number }>;
  abort(): Promise<{ aborted: number }>;
  close(): void;
}

export declare class SmoothText {
  constructor(onText: (text: string) => void, options?: { minCharsPerSec?: number; catchUpMs?: number });
  update(text: string, options?: { streaming?: boolean }): void;
  dispose(): void;
}
