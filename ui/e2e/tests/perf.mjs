// The performance measures of issue 16, printed as numbers (docs/benchmarks.md reports them); only
// what does not depend on the machine's speed is asserted: a long log stays virtualised.
import { sel, waitText, recordDagStatuses, dagStatusLog, openTaskRow } from '../lib/ui.mjs';

const wideTasks = 1000;
const logLines = 50000;
const maxLogNodes = 2000;

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
      await page.waitForFunction((n) => document.querySelectorAll('svg[data-testid=dag] g[data-task]').length >= n, wideTasks, {
        polling: 'raf',
        timeout: 60_000,
      });
      const firstPaint = await page.evaluate(() => Math.round(performance.now()));
      const fcp = await page.evaluate(() => Math.round(performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1));
      t.metric(`run page of ${wideTasks} tasks: navigation to every DAG node drawn`, firstPaint, 'ms');
      t.metric(`run page of ${wideTasks} tasks: first contentful paint`, fcp, 'ms');
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
];
