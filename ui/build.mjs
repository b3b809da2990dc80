// Builds the web UI into services/api/webui/dist, which the Go binary embeds: one hashed JS
// bundle, one hashed CSS file and index.html naming them. Run from anywhere: node ui/build.mjs.
import * as esbuild from "esbuild";
import { readFile, writeFile, rm, mkdir, readdir } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "..", "services", "api", "webui", "dist");

// Everything but the placeholder that keeps //go:embed compiling.
await mkdir(out, { recursive: true });
for (const f of await readdir(out)) {
  if (f !== ".gitkeep") await rm(path.join(out, f), { recursive: true, force: true });
}

const result = await esbuild.build({
  entryPoints: [path.join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: path.join(out, "assets"),
  entryNames: "app-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

let js = "", css = "";
for (const file of Object.keys(result.metafile.outputs)) {
  const name = "/assets/" + path.basename(file);
  if (file.endsWith(".js")) js = name;
  if (file.endsWith(".css")) css = name;
}
const html = (await readFile(path.join(here, "index.html"), "utf8")).replace("%CSS%", css).replace("%JS%", js);
await writeFile(path.join(out, "index.html"), html);
await writeFile(path.join(out, "favicon.svg"), await readFile(path.join(here, "favicon.svg")));

let raw = 0, gz = 0;
for (const f of [js, css, "/index.html"]) {
  const data = await readFile(path.join(out, f));
  raw += data.length;
  gz += gzipSync(data, { level: 9 }).length;
}
console.log(`ui: built ${path.relative(process.cwd(), out)} (${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped)`);
