#!/usr/bin/env node
// The end-to-end tests of the web UI: a real `ork serve` (every role in one process, SQLite) in a
// scratch folder with the test workflows, driven through Debian's headless Chromium.
//
//   node run.mjs --ork PATH/TO/ork [--only REGEXP] [--keep]
//
// It builds nothing: give it the ork binary (`make test-ui` builds one). Screenshots, the servers'
// logs and the browser's console go to artifacts/ (E2E_ARTIFACTS), one folder per test.
// Environment: ORK_BIN (instead of --ork), E2E_IDLE_SECONDS (idle test length, 60 by default: keep
// it so in CI), E2E_PERF=0 (skip the performance measures), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdtemp, mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OrkServer } from './lib/server.mjs';
import { workflowFiles } from './lib/workflows.mjs';
import basics from './tests/basics.mjs';
import live from './tests/live.mjs';
import control from './tests/control.mjs';
import idle from './tests/idle.mjs';
import login from './tests/login.mjs';
import perf from './tests/perf.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    ork: { type: 'string', default: process.env.ORK_BIN || '' },
    only: { type: 'string', default: process.env.E2E_ONLY || '' },
    keep: { type: 'boolean', default: false },
  },
});
if (!opts.ork) {
  console.error('usage: node run.mjs --ork PATH/TO/ork [--only REGEXP] [--keep]   (or ORK_BIN=PATH)');
  process.exit(2);
}
const ork = path.resolve(opts.ork);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
for (const [what, p] of [['the ork binary', ork], ['Chromium', chromiumPath]]) {
  if (!existsSync(p)) {
    console.error(`error: ${what} is not at ${p}`);
    process.exit(2);
  }
}

const artifacts = path.resolve(process.env.E2E_ARTIFACTS || path.join(here, 'artifacts'));
await rm(artifacts, { recursive: true, force: true });
await mkdir(artifacts, { recursive: true });
const scratch = await mkdtemp(path.join(os.tmpdir(), 'ork-e2e-'));

let tests = [...basics, ...live, ...control, ...idle, ...login];
if (process.env.E2E_PERF !== '0') tests.push(...perf);
if (opts.only) tests = tests.filter((t) => new RegExp(opts.only).test(t.name));

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const metrics = [];

const server = new OrkServer({ ork, dir: path.join(scratch, 'main'), logDir: path.join(artifacts, 'servers') });
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

const results = [];
try {
  await server.start();
  await server.writeFiles(workflowFiles);
  await server.cli(['workflows', 'apply', '.']);
  console.log(`ork serve at ${server.url} in ${server.dir}; Chromium ${browser.version()}; artifacts in ${artifacts}`);

  for (const test of tests) {
    const dir = path.join(artifacts, slug(test.name));
    await mkdir(dir, { recursive: true });
    const contexts = [];
    let shots = 0;
    const t = {
      server,
      browser,
      ork,
      scratch,
      artifactsDir: dir,
      /** A fresh browser context (no cookies, no storage) and a page at 1280×800. */
      async page({ baseURL = server.url, ...options } = {}) {
        const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 800 }, ...options });
        contexts.push(context);
        const page = await context.newPage();
        const consoleLog = path.join(dir, `console-${contexts.length}.log`);
        page.on('console', (m) => appendFile(consoleLog, `[${m.type()}] ${m.text()}\n`).catch(() => {}));
        page.on('dialog', (d) => d.accept().catch(() => {})); // a confirm() before cancel, say
        page.on('pageerror', (e) => appendFile(consoleLog, `[pageerror] ${e.stack || e}\n`).catch(() => {}));
        return page;
      },
      /** Saves a screenshot of the page as NN-name.png in the test's folder. */
      async shot(page, name, options = {}) {
        shots++;
        const file = path.join(dir, `${String(shots).padStart(2, '0')}-${slug(name)}.png`);
        await page.screenshot({ path: file, ...options });
        return file;
      },
      note(msg) {
        console.log(`    ${msg}`);
      },
      metric(name, value, unit) {
        metrics.push({ name, value, unit });
        console.log(`    measure: ${name} = ${value} ${unit}`);
      },
    };
    const started = Date.now();
    let error = null;
    console.log(`▶ ${test.name}`);
    const timeout = test.timeout || 120_000;
    let timer;
    try {
      await Promise.race([
        test.fn(t),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the test took longer than ${timeout / 1000} s`)), timeout);
        }),
      ]);
    } catch (err) {
      error = err;
      // What each open page showed, as a picture and as text, for the report.
      for (const c of contexts) {
        for (const p of c.pages()) {
          await t.shot(p, 'failure').catch(() => {});
          const text = await p.evaluate(() => document.body.innerText).catch(() => '');
          await writeFile(path.join(dir, `failure-${shots}.txt`), `${p.url()}\n\n${text}`).catch(() => {});
          error.message += `\n    the page at ${p.url()} shows: ${text.replace(/\s+/g, ' ').slice(0, 300)}`;
        }
      }
    } finally {
      clearTimeout(timer);
      for (const c of contexts) await c.close().catch(() => {});
    }
    const ms = Date.now() - started;
    results.push({ name: test.name, ok: !error, ms, error });
    console.log(error ? `✗ ${test.name} (${(ms / 1000).toFixed(1)} s)\n    ${error.stack || error}` : `✓ ${test.name} (${(ms / 1000).toFixed(1)} s)`);
  }
} catch (err) {
  results.push({ name: 'harness', ok: false, ms: 0, error: err });
  console.error(`✗ harness: ${err.stack || err}`);
} finally {
  await browser.close().catch(() => {});
  await server.stop().catch(() => {});
  if (!opts.keep) await rm(scratch, { recursive: true, force: true }).catch(() => {});
}

const failed = results.filter((r) => !r.ok);
console.log('\nTEST'.padEnd(64) + 'RESULT  SECONDS');
for (const r of results) console.log(`${r.name.padEnd(63)} ${r.ok ? 'pass' : 'FAIL'}    ${(r.ms / 1000).toFixed(1)}`);
if (metrics.length) {
  console.log('\nMEASURE'.padEnd(64) + 'VALUE');
  for (const m of metrics) console.log(`${m.name.padEnd(63)} ${m.value} ${m.unit}`);
}
await writeFile(path.join(artifacts, 'results.json'), JSON.stringify({
  results: results.map(({ name, ok, ms, error }) => ({ name, ok, ms, error: error ? String(error.message || error) : null })),
  metrics,
}, null, 2));
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed; screenshots in ${artifacts}`);
process.exit(failed.length ? 1 : 0);
