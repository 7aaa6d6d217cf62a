// Types of /react.js: React hooks over /client.js.
import type { ReactNode } from "react";
import type { ChatClient, FileRecord, Fork, Message, Page, Part, ShownMessage, Status, Thread, Viewer } from "./client.js";

export declare function ThreadlineProvider(props: { client: ChatClient; children?: ReactNode }): ReactNode;
export declare function useThreadlineClient(): ChatClient;
export declare function useConnectionStatus(): Status;

export declare function useQuery<T = unknown>(name: string, args: Record<string, unknown> | null): {
  data: T | undefined; error: Error | null; isLoading: boolean;
};

export declare function useThreads(options?: { numItems?: number }): {
  threads: Thread[]; isDone: boolean; loadMore(count?: number): void; isLoading: boolean; error: Error | null;
};

export type PageStatus = "LoadingFirstPage" | "CanLoadMore" | "Exhausted";

export interface ThreadMessages<T> {
  results: T[];
  status: PageStatus;
  loadMore(count?: number): boolean;
  isStreaming: boolean;
  error: Error | null;
}

export declare function useThreadMessages(threadId: string | null, options?: { initialNumItems?: number }):
  ThreadMessages<ShownMessage>;

export type UIPart =
  | { type: "text" | "reasoning"; text: string }
  | { type: "tool"; toolCallId: string; toolName: string; args?: unknown; argsText?: string;
      state: "input-streaming" | "call" | "result" | "error"; result?: unknown }
  | { type: "object"; object: unknown }
  | { type: "step-start" }
  | Part;

export interface UIMessage {
  key: string;
  id: string;
  order: number;
  role: "user" | "assistant" | "system";
  agentName: string | null;
  status: ShownMessage["status"];
  streaming: boolean;
  text: string;
  parts: UIPart[];
  error: string | null;
  messages: ShownMessage[];
}

export declare function useUIMessages(threadId: string | null, options?: { initialNumItems?: number }):
  ThreadMessages<UIMessage>;
export declare function toUIMessages(messages: ShownMessage[]): UIMessage[];

export declare function useSendMessage(threadId: string, options?: { agentName?: string }):
  (text: string, options?: { files?: FileRecord[]; agentName?: string }) => Promise<{ messageId: string; order: number }>;
export declare function useAbort(threadId: string): () => Promise<{ aborted: number }>;
/** Versions of edited messages on the branch shown (live), a new version, a switch to another. */
export declare function useBranches(threadId: string | null, options?: { agentName?: string }): {
  forks: Fork[]; error: unknown;
  edit(messageId: string, text: string, options?: { agentName?: string }): Promise<{ messageId: string; order: number; edits: string }>;
  switchTo(order: number): Promise<{ threadId: string; order: number; lastOrder: number }>;
};
/** This tab views the thread while the component is mounted. */
export declare function usePresence(threadId: string | null): {
  viewers: Viewer[]; typists: Viewer[]; typed(): void; stoppedTyping(): void;
};

export declare function useSmoothText(text: string, options?: { streaming?: boolean; minCharsPerSec?: number }):
  [string, { isRevealing: boolean }];

export type { Message, Page };
