// The one deadline helper of the harness: polls a condition (sync or async) until it returns a
// truthy value, which it returns, or throws naming what it waited for.
export async function waitFor(cond, { timeout = 30_000, interval = 100, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
