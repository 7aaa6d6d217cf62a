// Reads a UI message stream (SSE text) from stdin with the AI SDK's own parser, chunk schema and
// message reader; prints {chunks, message} as JSON (or {error} when the SDK rejects it).
// AI_SDK_MODULE: a module re-exporting another copy of the SDK (ai7/sdk.mjs: the current major).
const { parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } =
  await import(process.env.AI_SDK_MODULE ?? "ai");

const text = await new Promise((resolve) => {
  let data = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d) => { data += d; });
  process.stdin.on("end", () => resolve(data));
});
const body = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } });
const chunks = [];
try {
  const parsed = parseJsonEventStream({ stream: body, schema: uiMessageChunkSchema }).pipeThrough(new TransformStream({
    transform(chunk, controller) {
      if (!chunk.success) throw chunk.error;
      chunks.push(chunk.value.type);
      controller.enqueue(chunk.value);
    },
  }));
  let message = null;
  for await (const m of readUIMessageStream({ stream: parsed, terminateOnError: true })) message = m;
  console.log(JSON.stringify({ chunks, message }));
} catch (error) {
  console.log(JSON.stringify({ chunks, error: String(error?.message ?? error) }));
}
