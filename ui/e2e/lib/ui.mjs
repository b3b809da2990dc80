// The DOM contract of the web UI (ui/README or issue 16), in one place: every selector the tests use.
import { waitFor } from './wait.mjs';

export const sel = {
  runs: '[data-testid=runs]',
  runRow: (id) => `[data-testid=runs] tr[data-run-id="${id}"]`,
  runPage: (id) => (id ? `[data-testid=run-page][data-run-id="${id}"]` : '[data-testid=run-page][data-run-id]'),
  runStatus: '[data-testid=run-status]',
  dag: 'svg[data-testid=dag]',
  dagNode: (task) => `svg[data-testid=dag] g[data-task="${task}"]`,
  dagNodes: 'svg[data-testid=dag] g[data-task]',
  timeline: '[data-testid=timeline]',
  taskRow: (task) => `[data-testid=task-row][data-task="${task}"]`,
  taskLog: '[data-testid=task-log]',
  logLine: '[data-testid=task-log] [data-testid=log-line]',
  button: (name) => `button[data-testid=${name}]`,
  workflows: '[data-testid=workflows]',
  workflowRow: (name) => `[data-testid=workflows] tr[data-workflow="${name}"]`,
  workflowPage: (name) => `[data-testid=workflow-page][data-workflow="${name}"]`,
  workflowYaml: '[data-testid=workflow-yaml]',
  runButton: 'button[data-testid=run-button]',
  param: (name) => `[name="param-${name}"]`,
  runSubmit: 'button[data-testid=run-submit]',
  tokenInput: 'input[data-testid=token-input]',
  loginSubmit: 'button[data-testid=login-submit]',
  live: '[data-testid=live]',
};

export const controlButtons = ['cancel', 'pause', 'resume', 'rerun-failed', 'rerun-all'];

/** Waits until the element's attribute has the value (or one of the values). */
export async function waitAttr(page, selector, attr, value, timeout = 30_000) {
  const want = [].concat(value);
  let seen;
  try {
    return await waitFor(async () => {
      seen = await page.locator(selector).first().getAttribute(attr, { timeout: 1000 }).catch(() => undefined);
      return want.includes(seen) ? seen : null;
    }, { timeout, what: `${selector} [${attr}] to be ${want.join('|')}` });
  } catch (err) {
    err.message += ` (last seen: ${seen === undefined ? 'no such element' : JSON.stringify(seen)})`;
    throw err;
  }
}

/** Waits until the element's trimmed text is (or, with a RegExp, matches) the value. */
export async function waitText(page, selector, value, timeout = 30_000) {
  let seen;
  try {
    return await waitFor(async () => {
      seen = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => undefined);
      const t = seen?.trim();
      if (t === undefined) return null;
      return (value instanceof RegExp ? value.test(t) : t.toLowerCase().includes(value)) ? t : null;
    }, { timeout, what: `the text of ${selector} to be ${value}` });
  } catch (err) {
    err.message += ` (last seen: ${seen === undefined ? 'no such element' : JSON.stringify(seen?.trim())})`;
    throw err;
  }
}

/** The run status a page shows, normalised: the contract's words, whatever icon is next to them. */
export async function shownRunStatus(page, scope = '') {
  const t = await page.locator(`${scope} ${sel.runStatus}`.trim()).first().textContent();
  return t.trim().toLowerCase();
}

/**
 * Marks the document so a test can tell later that the page was never reloaded (a reload, or a
 * full navigation, makes a new window object without the mark).
 */
export async function markPage(page) {
  await page.evaluate(() => {
    window.__orkE2eMark = 'not reloaded';
  });
}

export async function assertNotReloaded(page) {
  const mark = await page.evaluate(() => window.__orkE2eMark);
  if (mark !== 'not reloaded') throw new Error('the page was reloaded (its mark is gone)');
}

/**
 * Records every change of data-status of the DAG's nodes, with its time: window.__orkStatusLog is a
 * list of [task, status, ms since the recording started].
 */
export async function recordDagStatuses(page) {
  await page.evaluate(() => {
    const t0 = performance.now();
    window.__orkStatusLog = [];
    const seen = new Map();
    const note = (g) => {
      const task = g.getAttribute('data-task');
      const status = g.getAttribute('data-status');
      if (task && seen.get(task) !== status) {
        seen.set(task, status);
        window.__orkStatusLog.push([task, status, performance.now() - t0]);
      }
    };
    document.querySelectorAll('svg[data-testid=dag] g[data-task]').forEach(note);
    new MutationObserver((muts) => {
      for (const m of muts) {
        if (m.type === 'attributes' && m.target.matches?.('g[data-task]')) note(m.target);
        for (const n of m.addedNodes || []) {
          if (n.nodeType !== 1) continue;
          if (n.matches('g[data-task]')) note(n);
          n.querySelectorAll?.('g[data-task]').forEach(note);
        }
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
  });
}

export async function dagStatusLog(page) {
  return page.evaluate(() => window.__orkStatusLog || []);
}

/**
 * Opens a task's detail from its row of the task table: a click on the row's button (its name) when
 * it has one, else on the row itself.
 */
export async function openTaskRow(page, task) {
  const row = page.locator(sel.taskRow(task)).first();
  const button = row.locator('button, a').first();
  await ((await button.count()) ? button : row).click();
  await page.locator(sel.taskLog).waitFor();
}

/** Buttons of the list that are on the page and visible. */
export async function visibleButtons(page, names = controlButtons) {
  const shown = [];
  for (const n of names) {
    const b = page.locator(sel.button(n));
    const count = await b.count();
    for (let i = 0; i < count; i++) {
      if (await b.nth(i).isVisible()) {
        shown.push(n);
        break;
      }
    }
  }
  return shown;
}

/** Whether a request is one of the API's event streams (a run's or every run's events, a log). */
export function isStream(url) {
  return /\/api\/v1\/(?:events|runs\/[^/]+\/(?:events|logs\/stream))$/.test(new URL(url).pathname);
}

/**
 * Follows the page's event-stream connections from now on: open() is the set of requests not
 * finished yet (a closed EventSource ends its request as failed, net::ERR_ABORTED), opened the list
 * of every one started.
 */
export function trackStreams(page) {
  const live = new Set();
  const opened = [];
  page.on('request', (r) => {
    if (!isStream(r.url())) return;
    live.add(r);
    opened.push(r);
  });
  for (const ev of ['requestfinished', 'requestfailed']) page.on(ev, (r) => live.delete(r));
  return { open: () => live.size, opened, paths: () => [...live].map((r) => new URL(r.url()).pathname) };
}

/**
 * Shows the page as a background tab would (hidden) or as the front one (visible). Headless
 * Chromium keeps every page visible whatever is in front or minimised, and no CDP method sets the
 * visibility, so the document's visibilityState and hidden are overridden and visibilitychange is
 * dispatched, as the browser does when a tab goes to the background.
 */
export async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    if (h) {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    } else {
      delete document.visibilityState; // the overrides are own properties: the real getters come back
      delete document.hidden;
    }
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}
