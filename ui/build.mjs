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

const common = {
  bundle: true,
  minify: true,
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: path.join(out, "assets"),
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
};
const outputs = (result) => Object.keys(result.metafile.outputs).map((file) => "/assets/" + path.basename(file));

// The graph layout worker first (a classic script, which every browser runs as a worker), so the
// app can name its hashed file.
const [worker] = outputs(await esbuild.build({
  ...common, entryPoints: [path.join(here, "src", "layout.worker.js")], format: "iife", entryNames: "layout-[hash]",
}));
const app = outputs(await esbuild.build({
  ...common, entryPoints: [path.join(here, "src", "main.js")], format: "esm", entryNames: "app-[hash]",
  define: { __LAYOUT_WORKER__: JSON.stringify(worker) },
}));
const js = app.find((f) => f.endsWith(".js"));
const css = app.find((f) => f.endsWith(".css"));
const html = (await readFile(path.join(here, "index.html"), "utf8")).replace("%CSS%", css).replace("%JS%", js);
await writeFile(path.join(out, "index.html"), html);
await writeFile(path.join(out, "favicon.svg"), await readFile(path.join(here, "favicon.svg")));

// Sizes: the page (index.html, app, styles) and the worker it starts for a graph.
const size = async (files) => {
  let raw = 0, gz = 0;
  for (const f of files) {
    const data = await readFile(path.join(out, f));
    raw += data.length;
    gz += gzipSync(data, { level: 9 }).length;
  }
  return `${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`;
};
console.log(`ui: built ${path.relative(process.cwd(), out)}: page ${await size([js, css, "/index.html"])}; graph layout worker ${await size([worker])}`);
