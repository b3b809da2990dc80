// What a run page shows live: the DAG's colours, a running task's log, a page that lost its event
// stream catching up once the network is back, and a hidden page holding no more than one stream.
import { CutProxy } from '../lib/proxy.mjs';
import { sel, waitAttr, waitText, markPage, assertNotReloaded, recordDagStatuses, dagStatusLog, trackStreams, setHidden } from '../lib/ui.mjs';
import { waitFor } from '../lib/wait.mjs';

/**
 * Starts an e2e_live run and opens its page, marked (to tell a reload) and recording the DAG;
 * before(page) is called before the page is opened.
 */
async function openLiveRun(t, greeting, { before, ...pageOptions } = {}) {
  const id = await t.server.trigger('e2e_live', { greeting });
  const page = await t.page(pageOptions);
  await before?.(page);
  await page.goto(`/runs/${id}`);
  await page.locator(sel.runPage(id)).waitFor();
  await page.locator(sel.dag).waitFor();
  await markPage(page);
  await recordDagStatuses(page);
  return { id, page };
}

/** Cuts the page's connections while its run moves on, then checks that it catches up. */
async function droppedStream(t, proxy) {
  const { id, page } = await openLiveRun(t, 'offline', { baseURL: proxy.url });
  await waitAttr(page, sel.dagNode('talk'), 'data-status', 'running');
  await waitAttr(page, sel.live, 'data-state', 'open');
  await t.shot(page, 'connected');

  proxy.down();
  const offlineAt = Date.now();
  await waitAttr(page, sel.live, 'data-state', 'closed', 20_000);
  await t.shot(page, 'connection cut');

  // Events happen while the page cannot hear them.
  await t.server.writeFiles({ [`gates/${id}.talk`]: '' });
  await t.server.waitRun(id, 'success');
  const stale = await page.locator(sel.dagNode('talk')).getAttribute('data-status');
  if (stale !== 'running') throw new Error(`talk shows ${stale} while cut off: the stream was not cut, the test proves nothing`);

  const streams = [];
  page.on('request', (r) => {
    if (/\/events$/.test(new URL(r.url()).pathname)) streams.push(r);
  });
  proxy.up();
  await waitAttr(page, sel.dagNode('talk'), 'data-status', 'success', 30_000);
  await waitAttr(page, sel.dagNode('finish'), 'data-status', 'success', 30_000);
  await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
  await assertNotReloaded(page);
  t.note(`caught up ${((Date.now() - offlineAt) / 1000).toFixed(1)} s after the cut`);
  await t.shot(page, 'caught up');

  // It resumed where it stopped (Last-Event-ID), not from the start.
  if (!streams.length) throw new Error('no event stream was opened again after the connection came back');
  const resumed = [];
  for (const r of streams) {
    const h = await r.allHeaders();
    const q = new URL(r.url()).searchParams.get('last_event_id');
    resumed.push(h['last-event-id'] || q || '');
  }
  t.note(`streams reopened: ${streams.map((r, i) => `${new URL(r.url()).pathname} (Last-Event-ID ${resumed[i] || 'none'})`).join(', ')}`);
  if (!resumed.some(Boolean)) throw new Error('the event stream was reopened without Last-Event-ID');
}

export default [
  {
    name: 'the DAG turns green without a reload',
    async fn(t) {
      const { id, page } = await openLiveRun(t, 'green');
      await waitAttr(page, sel.dagNode('prepare'), 'data-status', 'success');
      await waitAttr(page, sel.dagNode('talk'), 'data-status', 'running');
      await waitAttr(page, sel.dagNode('finish'), 'data-status', 'pending');
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'running');
      await page.locator(sel.timeline).waitFor();
      await t.shot(page, 'talk running, finish pending');

      await t.server.writeFiles({ [`gates/${id}.talk`]: '' });
      await waitAttr(page, sel.dagNode('talk'), 'data-status', 'success');
      await waitAttr(page, sel.dagNode('finish'), 'data-status', 'success');
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
      await assertNotReloaded(page);
      await t.shot(page, 'every task green');

      const log = await dagStatusLog(page);
      const finish = log.filter(([task]) => task === 'finish').map(([, s]) => s);
      if (finish[0] !== 'pending' || finish.at(-1) !== 'success') {
        throw new Error(`finish went through ${finish.join(' → ')} on the page, want pending … success`);
      }
      t.note(`statuses seen on the page: ${log.map(([task, s]) => `${task}=${s}`).join(', ')}`);
    },
  },
  {
    name: 'a running task\'s log line appears as it is printed',
    async fn(t) {
      const { id, page } = await openLiveRun(t, 'logline');
      await waitAttr(page, sel.dagNode('talk'), 'data-status', 'running');
      await page.locator(sel.dagNode('talk')).click();
      await page.locator(sel.taskLog).waitFor();
      const first = page.locator(sel.logLine, { hasText: 'logline: first line' });
      await first.first().waitFor();
      const stderr = page.locator(sel.logLine, { hasText: 'logline: a warning on stderr' });
      await stderr.first().waitFor();
      const stream = await stderr.first().getAttribute('data-stream');
      if (stream !== 'stderr') throw new Error(`the stderr line has data-stream=${JSON.stringify(stream)}`);
      const outStream = await first.first().getAttribute('data-stream');
      if (outStream === 'stderr') throw new Error('a stdout line is marked as stderr');
      const run = await t.server.run(id);
      if (run.tasks.talk.status !== 'running') throw new Error(`talk is ${run.tasks.talk.status}, the line was not read while it ran`);
      await t.shot(page, 'live log of talk');

      // A line printed now, while the page is open, shows up in it.
      await t.server.writeFiles({ [`gates/${id}.talk`]: '' });
      await page.locator(sel.logLine, { hasText: 'logline: past the gate' }).first().waitFor({ timeout: 15_000 });
      await assertNotReloaded(page);
      await t.shot(page, 'a line printed after the page opened');
      await t.server.waitRun(id, 'success');
    },
  },
  {
    name: 'a page that lost its event stream catches up',
    async fn(t) {
      // The page talks to the server through a proxy that can cut its connections.
      const proxy = await new CutProxy(t.server.url).start();
      try {
        await droppedStream(t, proxy);
      } finally {
        await proxy.stop();
      }
    },
  },
  {
    name: 'a page in a background tab holds one connection at most',
    async fn(t) {
      let streams;
      const { id, page } = await openLiveRun(t, 'hidden', {
        before: (p) => {
          streams = trackStreams(p);
        },
      });
      // The run's events and, with talk's log open, the log's stream.
      await waitAttr(page, sel.dagNode('talk'), 'data-status', 'running');
      await page.locator(sel.dagNode('talk')).click();
      await page.locator(sel.logLine, { hasText: 'hidden: first line' }).first().waitFor();
      await waitAttr(page, sel.live, 'data-state', 'open');
      const visible = streams.open();
      t.note(`visible: ${visible} open streams (${streams.paths().join(', ')})`);
      if (visible < 1) throw new Error('the visible page of a running run has no event stream open: the test proves nothing');
      await t.shot(page, 'visible, streams open');

      // To the background; the run moves on to its end while the page is hidden.
      await setHidden(page, true);
      await waitFor(() => streams.open() <= 1, { timeout: 10_000, what: 'the hidden page to close its streams' });
      const openedBefore = streams.opened.length;
      let most = streams.open();
      const watch = setInterval(() => {
        most = Math.max(most, streams.open());
      }, 20);
      try {
        await t.server.writeFiles({ [`gates/${id}.talk`]: '' });
        await t.server.waitRun(id, 'success');
        await page.waitForTimeout(2000); // what a hidden page would open, it has had the time to
      } finally {
        clearInterval(watch);
      }
      most = Math.max(most, streams.open());
      const reopened = streams.opened.slice(openedBefore).map((r) => new URL(r.url()).pathname);
      t.note(`hidden: at most ${most} open streams while the run ended; opened while hidden: ${reopened.join(', ') || 'none'}`);
      await t.shot(page, 'hidden, the run ended meanwhile');
      if (most > 1) throw new Error(`the hidden page held ${most} streams open (${streams.paths().join(', ')})`);
      const stale = await page.locator(sel.dagNode('talk')).getAttribute('data-status');
      if (most === 0 && stale !== 'running') throw new Error(`talk shows ${stale} on a page with no stream: the page was not hidden, the test proves nothing`);

      // To the front again: the page catches up, without a reload, from where its streams stopped.
      const shownFrom = streams.opened.length;
      await setHidden(page, false);
      await waitAttr(page, sel.dagNode('talk'), 'data-status', 'success', 20_000);
      await waitAttr(page, sel.dagNode('finish'), 'data-status', 'success', 20_000);
      await waitText(page, `${sel.runPage(id)} ${sel.runStatus}`, 'success');
      await page.locator(sel.logLine, { hasText: 'hidden: past the gate' }).first().waitFor({ timeout: 15_000 });
      await assertNotReloaded(page);
      const again = streams.opened.slice(shownFrom);
      const resumed = again.map((r) => new URL(r.url()).searchParams.get('last_event_id') || '');
      t.note(`shown again: streams reopened ${again.map((r, i) => `${new URL(r.url()).pathname} (last_event_id ${resumed[i] || 'none'})`).join(', ') || 'none'}`);
      if (most === 0 && !again.length) throw new Error('no stream was opened again when the page was shown');
      await t.shot(page, 'shown again, caught up');
    },
  },
];
