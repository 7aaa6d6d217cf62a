// The browser client on a live query with patches, against a real server: sends `count` messages
// to a thread and prints what it received as JSON (frame kinds, the last value, whether every value
// handed to onResult stayed as it was, and how many records successive values shared).
const [clientUri, url, token, threadId, count] = process.argv.slice(2);
const { ChatClient } = await import(clientUri);
const kinds = {};

class CountingSocket extends WebSocket {
  constructor(address) {
    super(address);
    this.addEventListener("message", (event) => {
      const type = JSON.parse(event.data).type;
      kinds[type] = (kinds[type] || 0) + 1;
    });
  }
}

const client = new ChatClient(url, { token, WebSocket: CountingSocket });
const seen = [];  // [value, its JSON when it arrived]
let wake = null;
client.subscribe("messages.list", { threadId, paginationOpts: { numItems: 3 } }, (value) => {
  seen.push([value, JSON.stringify(value)]);
  if (wake) wake();
});
const next = (n) => new Promise((resolve) => { wake = () => seen.length >= n && resolve(); wake(); });
await next(1);
for (let i = 0; i < Number(count); i++) {
  await client.mutate("messages.send", { threadId, prompt: `js ${i} ` + "y".repeat(300), generate: false });
  await next(i + 2);
}
let shared = 0;
for (let i = 1; i < seen.length; i++) {
  const before = new Set(seen[i - 1][0].page);
  shared += seen[i][0].page.filter((m) => before.has(m)).length;
}
console.log(JSON.stringify({
  kinds, last: seen.at(-1)[0], values: seen.length, shared,
  intact: seen.every(([value, text]) => JSON.stringify(value) === text),
}));
client.close();
