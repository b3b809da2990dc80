// A server that requires tokens (ork serve --tokens): the UI asks for one, and a read-only token
// hides the buttons it cannot use.
import path from 'node:path';
import { OrkServer } from '../lib/server.mjs';
import { workflowFiles } from '../lib/workflows.mjs';
import { sel, waitText, visibleButtons, controlButtons } from '../lib/ui.mjs';

async function createToken(server, scope) {
  const out = await server.cli(['token', 'create', '--scope', scope, '--name', `e2e-${scope}`]);
  const token = out.match(/\bork_[A-Za-z0-9_-]+/)?.[0];
  if (!token) throw new Error(`no token in the output of ork token create: ${out}`);
  return token;
}

async function logIn(t, server, token) {
  const page = await t.page({ baseURL: server.url });
  await page.goto('/');
  const input = page.locator(sel.tokenInput);
  await input.waitFor({ timeout: 15_000 });
  await input.fill(token);
  await page.locator(sel.loginSubmit).click();
  await page.locator(sel.runs).waitFor({ timeout: 15_000 });
  return page;
}

export default [
  {
    name: 'login with a token; a read-only token hides the run and control buttons',
    timeout: 180_000,
    async fn(t) {
      const server = new OrkServer({
        ork: t.ork,
        dir: path.join(t.scratch, 'tokens'),
        logDir: path.join(path.dirname(t.artifactsDir), 'servers'),
        args: ['--tokens'],
      });
      await server.writeFiles(workflowFiles);
      // Tokens go into the folder's database before the server opens it.
      const admin = await createToken(server, 'admin');
      const read = await createToken(server, 'read');
      const submit = await createToken(server, 'submit');
      await server.start();
      try {
        server.token = admin;
        await server.cli(['workflows', 'apply', 'e2e_slow.yaml', 'e2e_live.yaml'], { env: { ORK_API_TOKEN: admin } });
        const id = await server.trigger('e2e_slow');
        await server.waitTask(id, 'wait', 'running');

        // Without a token, the UI asks for one; a wrong one is refused.
        const anon = await t.page({ baseURL: server.url });
        await anon.goto('/');
        await anon.locator(sel.tokenInput).waitFor({ timeout: 15_000 });
        await t.shot(anon, 'login page');
        await anon.locator(sel.tokenInput).fill('ork_000000000000_not-a-token');
        await anon.locator(sel.loginSubmit).click();
        await anon.waitForTimeout(1500);
        if (await anon.locator(sel.runs).isVisible()) throw new Error('a wrong token was let in');
        await anon.locator(sel.tokenInput).waitFor();
        await t.shot(anon, 'wrong token refused');

        // A read token sees the runs, but no button that would need submit.
        const reader = await logIn(t, server, read);
        await waitText(reader, `${sel.runRow(id)} ${sel.runStatus}`, 'running');
        await t.shot(reader, 'runs page with a read token');
        await reader.goto(`/runs/${id}`);
        await reader.locator(sel.runPage(id)).waitFor();
        await reader.locator(`${sel.dagNode('wait')}[data-status=running]`).waitFor();
        const readButtons = await visibleButtons(reader);
        await t.shot(reader, 'running run with a read token');
        if (readButtons.length) throw new Error(`a read token is shown ${readButtons.join(', ')}`);
        await reader.goto('/workflows/e2e_live');
        await reader.locator(sel.workflowPage('e2e_live')).waitFor();
        await reader.locator(sel.workflowYaml).waitFor();
        await t.shot(reader, 'workflow page with a read token');
        if (await reader.locator(sel.runButton).isVisible()) throw new Error('a read token is shown the Run button');

        // A submit token sees them (the same pages), and can cancel.
        const submitter = await logIn(t, server, submit);
        await submitter.goto('/workflows/e2e_live');
        await submitter.locator(sel.workflowPage('e2e_live')).waitFor();
        await submitter.locator(sel.runButton).waitFor({ timeout: 10_000 });
        await submitter.goto(`/runs/${id}`);
        await submitter.locator(`${sel.dagNode('wait')}[data-status=running]`).waitFor();
        const submitButtons = await visibleButtons(submitter, controlButtons);
        t.note(`buttons with a submit token on a running run: ${submitButtons.join(', ')}`);
        if (!submitButtons.includes('cancel')) throw new Error('a submit token is not shown cancel on a running run');
        await t.shot(submitter, 'running run with a submit token');
        await submitter.locator(sel.button('cancel')).click();
        await server.waitRun(id, 'cancelled', 20_000);
        await waitText(submitter, `${sel.runPage(id)} ${sel.runStatus}`, 'cancelled');
      } finally {
        await server.stop();
      }
    },
  },
];
