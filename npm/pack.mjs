// Packs the npm packages @threadline/client and @threadline/react from the very files the server
// serves (server/static): each package's folder here holds its package.json and README; the
// module, its types and the LICENSE are copied in. The React entry imports the client by package
// name instead of "./client.js" and is marked "use client". Prints the tarballs' paths.
//
//   node npm/pack.mjs [out-dir]        (default: npm/dist)
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const statics = join(root, "server", "static");
const out = resolve(process.argv[2] ?? join(here, "dist"));

const toPackage = (text) => text.replace(/from "\.\/client\.js"/g, 'from "@threadline/client"');
const packages = {
  client: { "client.js": (t) => t, "client.d.ts": (t) => t },
  react: { "react.js": (t) => `"use client";\n${toPackage(t)}`, "react.d.ts": toPackage },
};

mkdirSync(out, { recursive: true });
const stage = mkdtempSync(join(tmpdir(), "threadline-npm-"));
try {
  for (const [name, files] of Object.entries(packages)) {
    const dir = join(stage, name);
    mkdirSync(dir);
    for (const file of ["package.json", "README.md"]) copyFileSync(join(here, name, file), join(dir, file));
    copyFileSync(join(root, "LICENSE"), join(dir, "LICENSE"));
    for (const [file, shape] of Object.entries(files)) {
      const text = readFileSync(join(statics, file), "utf8");
      const shaped = shape(text);
      if (shaped === text && file.startsWith("react")) throw new Error(`${file}: no "./client.js" import to rewrite`);
      writeFileSync(join(dir, file), shaped);
    }
    const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", out],
                                             { cwd: dir, encoding: "utf8" }));
    console.log(join(out, packed.filename));
  }
} finally {
  rmSync(stage, { recursive: true, force: true });
}
