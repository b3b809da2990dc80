// The runs page, a run started from a workflow's page with a parameter, and every page at a phone's
// width and in dark mode.
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

      // Its time reads relative, and absolute (the reader's locale and RFC 3339) in its title.
      const created = page.locator(`${sel.runRow(first)} time`);
      const rel = await created.textContent();
      if (!/^(now|\d+ (second|minute)s? ago)$/.test(rel)) throw new Error(`the run's time reads "${rel}", want a relative time such as "5 seconds ago"`);
      await page.waitForFunction((s) => document.querySelector(s)?.title, `${sel.runRow(first)} time`);
      const [title, datetime] = await created.evaluate((el) => [el.title, el.dateTime]);
      const iso = title.match(/\((\d{4}-\d\d-\d\dT[^)]+Z)\)$/)?.[1];
      if (!iso || new Date(iso).getTime() !== new Date(datetime).getTime()) throw new Error(`the run's time has the title "${title}", want its absolute time ${datetime}`);

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
      await page.locator(sel.dagNode('talk')).waitFor(); // the compiled DAG, laid out by the worker
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
  {
    name: 'every page fits a phone-width screen and reads in light and dark mode',
    async fn(t) {
      const failed = await t.server.trigger('e2e_fixable');
      await t.server.waitRun(failed, 'failed');
      const pages = [
        ['runs', '/', sel.runs],
        ['workflows', '/workflows', sel.workflows],
        ['workflow', '/workflows/e2e_live', sel.dagNodes],
        ['run', `/runs/${failed}?task=flaky`, sel.dagNodes],
      ];
      const looks = [
        ['phone, light', { viewport: { width: 390, height: 844 }, colorScheme: 'light', isMobile: true, hasTouch: true }],
        ['desktop, dark', { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' }],
      ];
      for (const [look, options] of looks) {
        const page = await t.page(options);
        for (const [name, path, ready] of pages) {
          await page.goto(path);
          await page.locator(ready).first().waitFor();
          if (name === 'run') await page.locator(sel.logLine).first().waitFor();
          const m = await page.evaluate(() => {
            // WCAG contrast of an element's text on the first opaque background under it.
            const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
              const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
              return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const bg = (el) => {
              for (let e = el; e; e = e.parentElement) {
                const c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3);
              }
              return [255, 255, 255];
            };
            const contrast = (el) => {
              const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
              return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            };
            const texts = [...document.querySelectorAll('h1, h2, td, th, dd, dt, .badge, nav a, p')].filter((e) => e.offsetParent && e.textContent.trim());
            const worst = texts.map((e) => [contrast(e), e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ')[0] : ''), e.textContent.trim().slice(0, 30)])
              .sort((x, y) => x[0] - y[0])[0];
            return { width: document.documentElement.scrollWidth, screen: innerWidth, background: lum(bg(document.body)), worst, n: texts.length };
          });
          await t.shot(page, `${name} page, ${look}`, { fullPage: true });
          if (m.width > m.screen + 1) throw new Error(`${name} page, ${look}: ${m.width} px wide on a ${m.screen} px screen (scrolls sideways)`);
          const dark = look.includes('dark');
          if (dark !== (m.background < 0.2)) throw new Error(`${name} page, ${look}: the background's luminance is ${m.background.toFixed(2)}`);
          if (!m.n || m.worst[0] < 4.5) throw new Error(`${name} page, ${look}: text "${m.worst?.[2]}" (${m.worst?.[1]}) has contrast ${m.worst?.[0].toFixed(2)}, under 4.5`);
          t.note(`${name} page, ${look}: ${m.width} px of ${m.screen}, lowest text contrast ${m.worst[0].toFixed(1)} (${m.worst[1]})`);
        }
      }
    },
  },
];
