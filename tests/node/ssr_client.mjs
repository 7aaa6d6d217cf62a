// Imports the browser client and makes a client where there is no browser: no window, document or
// sessionStorage (server-side rendering, React Native, plain Node). Prints what it saw as JSON.
const { ChatClient } = await import(process.argv[2]);
const seen = [];
const client = new ChatClient("ws://127.0.0.1:9/ws", { token: "t" });
client.onStatus((s) => seen.push(s));
await new Promise((resolve) => setTimeout(resolve, 50));
client.close();
console.log(JSON.stringify({ clientId: client.clientId, statuses: seen, hasWebSocket: typeof WebSocket !== "undefined" }));
