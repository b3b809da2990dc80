// Steering a run with the run page's buttons: cancel, and rerun what failed.
import { sel, waitAttr, waitText, visibleButtons, openTaskRow } from '../lib/ui.mjs';
import { waitFor } from '../lib/wait.mjs';

export default [
  {
    name: 'cancel a run: its running task ends cancelled',
    async fn(t) {
      const id = await t.server.trigger('e2e_slow');
      const page = await t.page();
      await page.goto(`/runs/${id}`);
      await page.locator(sel.runPage(id)).waitFor();
      await waitAttr(page, sel.dagNode('wait'), 'data-status', 'running');
      const shown = await visibleButtons(page);
      t.note(`buttons shown on a running run: ${shown.join(', ') || 'none'}`);
      await t.shot(page, 'running, before cancel');

      await page.locator(sel.button('cancel')).click();
      await waitAttr(page, sel.dagNode('wait'), 'data-status', 'cancelled');
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'cancelled');
      const after = await page.locator(sel.dagNode('after')).getAttribute('data-status');
      t.note(`after the cancel: wait=cancelled, after=${after}`);
      await t.shot(page, 'cancelled');

      const run = await t.server.waitRun(id, 'cancelled', 15_000);
      if (run.tasks.wait.status !== 'cancelled') throw new Error(`the API says wait is ${run.tasks.wait.status}`);
      if (run.tasks.after.status === 'success') throw new Error('after ran although its upstream was cancelled');
    },
  },
  {
    name: 'rerun failed runs only the failed part',
    async fn(t) {
      const old = await t.server.trigger('e2e_fixable');
      await t.server.waitRun(old, 'failed');
      const page = await t.page();
      await page.goto(`/runs/${old}`);
      await page.locator(sel.runPage(old)).waitFor();
      await waitAttr(page, sel.dagNode('prepare'), 'data-status', 'success');
      await waitAttr(page, sel.dagNode('flaky'), 'data-status', 'failed');
      await waitAttr(page, sel.dagNode('report'), 'data-status', 'skipped');
      await waitText(page, `${sel.runPage(old)} ${sel.runStatus}`, 'failed');

      // The failed task's detail, opened from its row, has its stderr line.
      await openTaskRow(page, 'flaky');
      const line = page.locator(sel.logLine, { hasText: 'not fixed yet' }).first();
      await line.waitFor();
      if ((await line.getAttribute('data-stream')) !== 'stderr') throw new Error('the error line of flaky is not marked stderr');
      await t.shot(page, 'failed run with the log of flaky');

      await t.server.writeFiles({ fixed: '' });
      const before = new Set((await t.server.api('GET', '/api/v1/runs?workflow=e2e_fixable')).runs.map((r) => r.run_id));
      await page.locator(sel.button('rerun-failed')).click();
      const fresh = await waitFor(async () => {
        const { runs } = await t.server.api('GET', '/api/v1/runs?workflow=e2e_fixable');
        return runs.find((r) => !before.has(r.run_id))?.run_id;
      }, { timeout: 15_000, what: 'the rerun to exist' });
      t.note(`rerun of ${old}: ${fresh}`);

      // The page moves to the new run (or, if it stays, the new run's page is opened by hand).
      const moved = await page.locator(sel.runPage(fresh)).waitFor({ timeout: 10_000 }).then(() => true, () => false);
      if (!moved) {
        await t.shot(page, 'after the rerun-failed click');
        const shows = (await page.evaluate(() => document.body.innerText)).replace(/\s+/g, ' ').slice(0, 200);
        t.note(`GAP: after rerun-failed the page at ${page.url()} did not show the new run (it shows: ${shows}); opening it again`);
        await page.goto(`/runs/${fresh}`);
      }
      await waitText(page, `${sel.runPage(fresh)} ${sel.runStatus}`, 'success');
      for (const task of ['prepare', 'flaky', 'report']) await waitAttr(page, sel.dagNode(task), 'data-status', 'success');
      await t.shot(page, 'the rerun succeeded');

      // prepare was reused, not run again: no attempt of it in the new run.
      const run = await t.server.waitRun(fresh, 'success');
      const attempted = run.attempts.map((a) => a.task).sort();
      if (run.tasks.prepare.attempts !== 0 || attempted.includes('prepare')) {
        throw new Error(`prepare ran again in the rerun (attempts ${run.tasks.prepare.attempts}, attempted: ${attempted})`);
      }
      if (attempted.join() !== 'flaky,report') throw new Error(`the rerun ran ${attempted.join(', ')}, want flaky, report`);
      t.note(`the rerun ran ${attempted.join(', ')}; prepare reused (0 attempts)`);
    },
  },
];
