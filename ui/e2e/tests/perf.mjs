// The performance measures of issue 16, printed as numbers (docs/benchmarks.md reports them); only
// what does not depend on the machine's speed is asserted: a long log stays virtualised, the runs
// page's pages are the API's.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { OrkServer } from '../lib/server.mjs';
import { workflowFiles } from '../lib/workflows.mjs';
import { sel, waitText, recordDagStatuses, dagStatusLog, openTaskRow } from '../lib/ui.mjs';

const execFileP = promisify(execFile);
const seedScript = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'seed_runs.py');

const wideTasks = 1000;
const logLines = 50000;
const maxLogNodes = 2000;
const manyRuns = 100_000;
const manyRunsName = manyRuns.toLocaleString('en');
const runsPageSize = 50; // the runs page's page (ui/src/pages/runs.js)

/** The run ids of the runs table's rows, in order. */
const shownRunIds = (page) => page.locator(`${sel.runs} tr[data-run-id]`).evaluateAll((rows) => rows.map((r) => r.dataset.runId));

async function mainThreadMetrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map(({ name, value }) => [name, value]));
  return { task: m.TaskDuration * 1000, script: m.ScriptDuration * 1000, layout: m.LayoutDuration * 1000, style: m.RecalcStyleDuration * 1000 };
}

export default [
  {
    name: `perf: a ${wideTasks}-task run page, first paint and live updates`,
    timeout: 300_000,
    async fn(t) {
      const id = await t.server.trigger('e2e_wide');
      await t.server.waitTask(id, 't0000', 'running');
      const page = await t.page();
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      await page.goto(`/runs/${id}`);
      // The page first (its table and timeline: the graph is laid out in a worker meanwhile), then the graph.
      await page.waitForFunction(() => document.querySelector('[data-testid=task-row]') && document.querySelector('.tl-row'), null, { polling: 'raf', timeout: 60_000 });
      const usable = await page.evaluate(() => Math.round(performance.now()));
      await page.waitForFunction((n) => document.querySelectorAll('svg[data-testid=dag] g[data-task]').length >= n, wideTasks, {
        polling: 'raf',
        timeout: 60_000,
      });
      const firstPaint = await page.evaluate(() => Math.round(performance.now()));
      const fcp = await page.evaluate(() => Math.round(performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1));
      t.metric(`run page of ${wideTasks} tasks: first contentful paint`, fcp, 'ms');
      t.metric(`run page of ${wideTasks} tasks: navigation to its tasks table and timeline drawn`, usable, 'ms');
      t.metric(`run page of ${wideTasks} tasks: navigation to every DAG node drawn`, firstPaint, 'ms');
      await t.shot(page, `${wideTasks} tasks pending`);

      await recordDagStatuses(page);
      await page.evaluate(() => {
        window.__orkLongTasks = [];
        new PerformanceObserver((l) => window.__orkLongTasks.push(...l.getEntries().map((e) => e.duration))).observe({ type: 'longtask' });
      });
      const before = await mainThreadMetrics(cdp);
      const gateAt = Date.now();
      await t.server.writeFiles({ [`gates/${id}.t0000`]: '' });
      await page.waitForFunction(
        () => [...document.querySelectorAll('svg[data-testid=dag] g[data-task]')].every((g) => g.getAttribute('data-status') === 'success'),
        null,
        { polling: 200, timeout: 180_000 },
      );
      const allGreen = Date.now() - gateAt;
      const after = await mainThreadMetrics(cdp);
      const run = await t.server.waitRun(id, 'success');
      const changes = (await dagStatusLog(page)).length - wideTasks; // the first entry of each task is where it stood
      const longTasks = await page.evaluate(() => window.__orkLongTasks);
      const busy = after.task - before.task;
      t.metric(`run of ${wideTasks} tasks: gate opened to every node green on the page`, allGreen, 'ms');
      t.metric(`run of ${wideTasks} tasks: gate opened to the run's end (API)`, new Date(run.finished_at) - gateAt, 'ms');
      t.metric(`run of ${wideTasks} tasks: DAG status changes seen`, changes, 'changes');
      t.metric(`run of ${wideTasks} tasks: main-thread busy time during the run`, Math.round(busy), `ms (script ${Math.round(after.script - before.script)}, layout ${Math.round(after.layout - before.layout)}, style ${Math.round(after.style - before.style)})`);
      t.metric(`run of ${wideTasks} tasks: main-thread time per status change`, changes > 0 ? (busy / changes).toFixed(2) : 'n/a', 'ms');
      t.metric(`run of ${wideTasks} tasks: long tasks (> 50 ms)`, longTasks.length, `(longest ${Math.round(Math.max(0, ...longTasks))} ms)`);
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
      await t.shot(page, `${wideTasks} tasks green`);

      // The finished run's page, opened afresh.
      const again = await t.page();
      await again.goto(`/runs/${id}`);
      await again.waitForFunction((n) => document.querySelectorAll('svg[data-testid=dag] g[data-task][data-status=success]').length >= n, wideTasks, {
        polling: 'raf',
        timeout: 60_000,
      });
      t.metric(`finished run page of ${wideTasks} tasks: navigation to every DAG node drawn`, await again.evaluate(() => Math.round(performance.now())), 'ms');
      // Reloaded: the graph's layout is read back from localStorage, not laid out again.
      await again.reload();
      await again.waitForFunction((n) => document.querySelectorAll('svg[data-testid=dag] g[data-task][data-status=success]').length >= n, wideTasks, {
        polling: 'raf',
        timeout: 60_000,
      });
      t.metric(`finished run page of ${wideTasks} tasks, reloaded: navigation to every DAG node drawn`, await again.evaluate(() => Math.round(performance.now())), 'ms');
    },
  },
  {
    name: `perf: a ${logLines}-line log stays virtualised`,
    timeout: 180_000,
    async fn(t) {
      const id = await t.server.trigger('e2e_biglog');
      await t.server.waitRun(id, 'success', 120_000);
      const page = await t.page();
      await page.goto(`/runs/${id}`);
      await page.locator(sel.runPage(id)).waitFor();
      const clicked = Date.now();
      await openTaskRow(page, 'shout');
      await page.locator(sel.logLine).first().waitFor({ timeout: 60_000 });
      t.metric(`log of ${logLines} lines: click to first line shown`, Date.now() - clicked, 'ms');
      const countLines = () => page.locator(sel.logLine).count();
      const atTop = await countLines();
      await t.shot(page, 'top of the log');

      // To the end of the log: the last line is reachable, and the DOM holds a window of lines.
      const last = `line ${logLines} of ${logLines}`;
      const scrolled = Date.now();
      await page.waitForFunction((text) => {
        const log = document.querySelector('[data-testid=task-log]');
        const scrollers = [log, ...log.querySelectorAll('*')].filter((e) => e.scrollHeight > e.clientHeight + 1 && getComputedStyle(e).overflowY !== 'visible');
        for (const s of scrollers) s.scrollTop = s.scrollHeight;
        if (!scrollers.length) window.scrollTo(0, document.body.scrollHeight);
        return [...log.querySelectorAll('[data-testid=log-line]')].some((l) => l.textContent.includes(text));
      }, last, { polling: 200, timeout: 60_000 });
      t.metric(`log of ${logLines} lines: scroll to the last line shown`, Date.now() - scrolled, 'ms');
      const atEnd = await countLines();
      t.metric(`log of ${logLines} lines: log-line nodes in the DOM`, `${atTop} at the top, ${atEnd} at the end`, 'nodes');
      await t.shot(page, 'end of the log');
      if (Math.max(atTop, atEnd) > maxLogNodes) throw new Error(`the log is not virtualised: ${Math.max(atTop, atEnd)} log-line nodes for ${logLines} lines`);
    },
  },
  {
    name: `perf: the runs page with ${manyRunsName} runs in the database`,
    timeout: 150_000,
    async fn(t) {
      // A folder of its own: one real run, the server stopped, the rest of the runs copied from it
      // into the database (the engine would take minutes), then the server started again on it.
      const server = new OrkServer({
        ork: t.ork,
        dir: path.join(t.scratch, 'runs100k'),
        logDir: path.join(path.dirname(t.artifactsDir), 'servers'),
      });
      await server.writeFiles({ 'e2e_quick.yaml': workflowFiles['e2e_quick.yaml'] });
      try {
        const seeding = Date.now();
        await server.start();
        await server.cli(['workflows', 'apply', 'e2e_quick.yaml']);
        const real = await server.trigger('e2e_quick');
        await server.waitRun(real, 'success');
        const exit = await server.stop();
        if (exit?.code !== 0 || exit.killed) throw new Error(`ork serve did not stop cleanly: ${JSON.stringify(exit)}`);
        await rm(path.join(server.dir, '.ork', 'serve.json'), { force: true }); // gone after a clean stop; a stale one would mislead start()
        const { stdout } = await execFileP('python3', [seedScript, path.join(server.dir, '.ork', 'ork.db'), String(manyRuns - 1)], { timeout: 60_000 });
        if (Number(stdout.trim()) !== manyRuns) throw new Error(`the database holds ${stdout.trim()} runs after seeding, want ${manyRuns}`);
        await server.start();
        t.note(`${manyRuns} runs in ${server.dir}/.ork/ork.db, seeded in ${((Date.now() - seeding) / 1000).toFixed(1)} s; server again at ${server.url}`);

        // The first two pages as the API gives them: the page must show exactly these.
        const first = await server.api('GET', `/api/v1/runs?page_size=${runsPageSize}`);
        const second = await server.api('GET', `/api/v1/runs?page_size=${runsPageSize}&page_token=${encodeURIComponent(first.next_page_token)}`);
        if (first.runs[0].run_id !== real) throw new Error(`the newest run is ${first.runs[0].run_id}, want the real one ${real}`);

        const page = await t.page({ baseURL: server.url });
        // The first animation frame with the page's rows, from the navigation's start.
        const rowsShown = async () => Math.round(await (await page.waitForFunction(
          (n) => document.querySelectorAll('[data-testid=runs] tr[data-run-id]').length >= n && performance.now(),
          runsPageSize, { polling: 'raf', timeout: 30_000 })).jsonValue());
        await page.goto('/');
        const shown = await rowsShown();
        const fcp = await page.evaluate(() => Math.round(performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1));
        const api = await page.evaluate(() => Math.round(performance.getEntriesByType('resource').find((e) => /\/api\/v1\/runs\?/.test(e.name))?.duration ?? -1));
        t.metric(`runs page, ${manyRunsName} runs: navigation to the first page's rows shown`, shown, 'ms');
        t.metric(`runs page, ${manyRunsName} runs: first contentful paint`, fcp, 'ms');
        t.metric(`runs page, ${manyRunsName} runs: the first page's API request`, api, 'ms');
        const ids1 = await shownRunIds(page);
        if (ids1.join() !== first.runs.map((r) => r.run_id).join()) throw new Error(`the first page shows ${ids1.length} runs that are not the API's first page`);
        await t.shot(page, 'first page');
        // Loaded again, as a user opening it another time does (the browser's caches and the
        // locale data warm; the page's script and the API calls made again).
        await page.reload();
        t.metric(`runs page, ${manyRunsName} runs, reloaded: navigation to the first page's rows shown`, await rowsShown(), 'ms');

        // The next page, by its link (the API's cursor in the URL), without a reload.
        const older = page.locator('nav[aria-label=pages] a', { hasText: 'Older' });
        await older.waitFor();
        const onFirst = new Set(ids1);
        // From the click event itself (its timeStamp), not from when playwright starts to click.
        await page.evaluate(() => document.addEventListener('click', (e) => {
          window.__orkClickAt = e.timeStamp;
        }, { capture: true, once: true }));
        await older.click();
        const next = await page.waitForFunction((o) => {
          const ids = [...document.querySelectorAll('[data-testid=runs] tr[data-run-id]')].map((r) => r.dataset.runId);
          return window.__orkClickAt !== undefined && ids.length >= o.n && !ids.some((id) => o.first.includes(id)) ? performance.now() - window.__orkClickAt : null;
        }, { n: runsPageSize, first: [...onFirst] }, { polling: 'raf', timeout: 30_000 });
        t.metric(`runs page, ${manyRunsName} runs: click on Older to the next page's rows shown`, Math.round(await next.jsonValue()), 'ms');
        const ids2 = await shownRunIds(page);
        if (ids2.join() !== second.runs.map((r) => r.run_id).join()) throw new Error('the next page shows runs that are not the API\'s second page');
        if (!new URL(page.url()).searchParams.get('page_token')) throw new Error(`the next page's URL ${page.url()} has no page_token`);
        await t.shot(page, 'next page');
      } finally {
        await server.stop();
      }
    },
  },
];
