// The runs page, and a run started from a workflow's page with a parameter.
import { sel, waitText, markPage, assertNotReloaded } from '../lib/ui.mjs';

export default [
  {
    name: 'runs page lists runs and shows a new one live',
    async fn(t) {
      const first = await t.server.trigger('e2e_quick');
      await t.server.waitRun(first, 'success');

      const page = await t.page();
      await page.goto('/');
      await page.locator(sel.runs).waitFor();
      await waitText(page, `${sel.runRow(first)} ${sel.runStatus}`, 'success');
      await markPage(page);
      await t.shot(page, 'runs page');

      // A run started elsewhere appears on the open page and reaches its end there, no reload.
      const second = await t.server.trigger('e2e_quick');
      await page.locator(sel.runRow(second)).waitFor({ timeout: 15_000 });
      await waitText(page, `${sel.runRow(second)} ${sel.runStatus}`, 'success');
      await assertNotReloaded(page);
      const ids = await page.locator(`${sel.runs} tr[data-run-id]`).evaluateAll((rows) => rows.map((r) => r.dataset.runId));
      if (ids.indexOf(second) > ids.indexOf(first)) throw new Error(`the newer run ${second} is listed after ${first}: not newest first`);
      await t.shot(page, 'a new run appeared');
    },
  },
  {
    name: 'a workflow run with a parameter from its page',
    async fn(t) {
      const greeting = `bonjour${Date.now() % 100000}`;
      const page = await t.page();
      await page.goto('/workflows');
      await page.locator(sel.workflowRow('e2e_live')).waitFor();
      await t.shot(page, 'workflows page');

      await page.goto('/workflows/e2e_live');
      await page.locator(sel.workflowPage('e2e_live')).waitFor();
      await waitText(page, sel.workflowYaml, 'name: e2e_live');
      await t.shot(page, 'workflow page');

      await page.locator(sel.runButton).click();
      const input = page.locator(sel.param('greeting'));
      await input.waitFor();
      await input.fill(greeting);
      await t.shot(page, 'run form filled');
      await page.locator(sel.runSubmit).click();

      // It navigates to the new run's page.
      await page.waitForURL(/\/runs\/[0-9a-f-]{8,}/, { timeout: 15_000 });
      const root = page.locator(sel.runPage());
      await root.waitFor();
      const id = await root.getAttribute('data-run-id');
      if (!page.url().endsWith(`/runs/${id}`)) throw new Error(`the URL ${page.url()} does not name the run ${id} the page shows`);
      const run = await t.server.run(id);
      if (run.workflow !== 'e2e_live') throw new Error(`run ${id} is of workflow ${run.workflow}`);
      if (run.params?.greeting !== greeting) throw new Error(`run ${id} has params ${JSON.stringify(run.params)}, want greeting=${greeting}`);
      t.note(`run ${id} started with greeting=${greeting}`);
      await t.server.waitTask(id, 'talk', 'running');
      await t.shot(page, 'the new run');
      await t.server.writeFiles({ [`gates/${id}.talk`]: '' });
      await t.server.waitRun(id, 'success');
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
    },
  },
];
