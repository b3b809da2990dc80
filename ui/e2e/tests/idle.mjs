// An idle page showing a finished run sends no request at all: nothing is polled.
import { sel, waitText } from '../lib/ui.mjs';

const idleSeconds = Number(process.env.E2E_IDLE_SECONDS || 60);

export default [
  {
    name: `an idle page of a finished run sends no request for ${idleSeconds} s`,
    timeout: (idleSeconds + 90) * 1000,
    async fn(t) {
      const id = await t.server.trigger('e2e_quick');
      await t.server.waitRun(id, 'success');
      const page = await t.page();
      const requests = [];
      page.on('request', (r) => requests.push({ at: Date.now(), method: r.method(), url: r.url() }));
      await page.goto(`/runs/${id}`);
      await page.locator(sel.runPage(id)).waitFor();
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
      await page.locator(`${sel.dagNode('two')}[data-status=success]`).waitFor();
      // Loading ends with what the page asked for while it opened (the run, its events until their
      // end event); the idle time counts from when two seconds pass without a request.
      let quietSince = Date.now();
      let seen = requests.length;
      while (Date.now() - quietSince < 2000) {
        await page.waitForTimeout(250);
        if (requests.length !== seen) {
          seen = requests.length;
          quietSince = Date.now();
        }
      }
      t.note(`loading made ${requests.length} requests: ${requests.map((r) => new URL(r.url).pathname).join(', ')}`);
      await t.shot(page, 'finished run, idle');
      const from = requests.length;
      const started = Date.now();
      await page.waitForTimeout(idleSeconds * 1000);
      const idle = requests.slice(from);
      t.metric('requests of an idle finished-run page', idle.length, `in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      await t.shot(page, `after ${idleSeconds} s`);
      if (idle.length) {
        throw new Error(`the idle page sent ${idle.length} requests: ${idle.slice(0, 10).map((r) => `${r.method} ${r.url}`).join(', ')}`);
      }
    },
  },
];
