// A real `ork serve` in a scratch folder of its own: started on a free port, stopped with SIGINT
// (as Ctrl-C would), its output kept in the artifacts folder for when a test fails. It can be started
// again on the same folder after a stop (the logs of each start follow those of the one before).
import { spawn, execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile, readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.mjs';

const execFileP = promisify(execFile);

export class OrkServer {
  /**
   * @param {object} o
   * @param {string} o.ork path of the ork binary
   * @param {string} o.dir scratch folder the server runs in (its .ork/ goes there)
   * @param {string} o.logDir where the server's stdout and stderr are written
   * @param {string[]} [o.args] extra `ork serve` flags (e.g. --tokens)
   */
  constructor({ ork, dir, logDir, args = [] }) {
    this.ork = ork;
    this.dir = dir;
    this.logDir = logDir;
    this.args = args;
    this.url = '';
    this.token = '';
    this.proc = null;
  }

  /** Writes files (name → text) into the scratch folder. */
  async writeFiles(files) {
    for (const [name, text] of Object.entries(files)) {
      const p = path.join(this.dir, name);
      await mkdir(path.dirname(p), { recursive: true });
      await writeFile(p, text, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
    }
  }

  /** Runs an ork command in the scratch folder and returns its stdout. */
  async cli(args, { env = {} } = {}) {
    try {
      const { stdout } = await execFileP(this.ork, args, {
        cwd: this.dir,
        env: { ...process.env, ...env },
        timeout: 60_000,
      });
      return stdout;
    } catch (err) {
      throw new Error(`ork ${args.join(' ')}: ${err.stderr || err.message}`);
    }
  }

  async start() {
    await mkdir(this.dir, { recursive: true });
    await mkdir(this.logDir, { recursive: true });
    const name = path.basename(this.dir);
    const out = createWriteStream(path.join(this.logDir, `${name}.stdout.log`), { flags: 'a' });
    const errLog = createWriteStream(path.join(this.logDir, `${name}.stderr.log`), { flags: 'a' });
    this.proc = spawn(this.ork, ['serve', '--addr', '127.0.0.1:0', '--rate-limit', '-1', ...this.args], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    let printed = '';
    this.proc.stdout.on('data', (b) => {
      out.write(b);
      printed += b.toString();
    });
    this.proc.stderr.pipe(errLog);
    const exitedEarly = this.exited.then(({ code, signal }) => {
      throw new Error(`ork serve exited (${signal || code}) before it printed its URL; see ${this.logDir}`);
    });
    const found = waitFor(() => printed.match(/the API is on (http:\/\/[^\s]+)/)?.[1], {
      timeout: 30_000,
      what: 'ork serve to print its URL',
    });
    this.url = await Promise.race([found, exitedEarly]);
    exitedEarly.catch(() => {});
    // The server writes .ork/serve.json for the commands of this folder; they need it from now on.
    await waitFor(async () => access(path.join(this.dir, '.ork', 'serve.json')).then(() => true, () => false), {
      what: '.ork/serve.json',
    });
    return this;
  }

  /**
   * Stops the server with SIGINT, or SIGKILL after 15 s; returns how it exited ({ code, signal,
   * killed }: a clean stop is code 0, not killed), or null if it was not running.
   */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
    const proc = this.proc;
    let killed = false;
    proc.kill('SIGINT');
    const t = setTimeout(() => {
      killed = true;
      proc.kill('SIGKILL');
    }, 15_000);
    const { code, signal } = await this.exited;
    clearTimeout(t);
    return { code, signal, killed };
  }

  /** Calls the HTTP API with the server's token (if any); returns the parsed JSON. */
  async api(method, p, body, { token = this.token } = {}) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(this.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  run(id) {
    return this.api('GET', `/api/v1/runs/${id}`);
  }

  async trigger(workflow, params = {}) {
    const r = await this.api('POST', `/api/v1/workflows/${workflow}/runs`, { params });
    return r.run_id;
  }

  /** Waits until the run is in one of the statuses and returns it. */
  async waitRun(id, statuses, timeout = 60_000) {
    const want = [].concat(statuses);
    return waitFor(async () => {
      const r = await this.run(id).catch(() => null);
      return r && want.includes(r.status) ? r : null;
    }, { timeout, what: `run ${id} to be ${want.join('|')}` });
  }

  /** Waits until the task of the run is in the status and returns the run. */
  async waitTask(id, task, status, timeout = 60_000) {
    return waitFor(async () => {
      const r = await this.run(id).catch(() => null);
      return r?.tasks?.[task]?.status === status ? r : null;
    }, { timeout, what: `task ${task} of run ${id} to be ${status}` });
  }

  async readFile(name) {
    return readFile(path.join(this.dir, name), 'utf8');
  }
}
