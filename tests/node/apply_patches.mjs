// Applies patches with the browser client's applyPatch: reads [{value, ops}, ...] as JSON on stdin and
// prints [{result, untouched}] (untouched: the value given is as it was after applying).
const { applyPatch } = await import(process.argv[2]);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map(({ value, ops }) => {
  const before = JSON.stringify(value);
  const result = applyPatch(value, ops);
  return { result, untouched: JSON.stringify(value) === before };
});
console.log(JSON.stringify(out));
