// A TCP proxy in front of the server, so a test can cut the browser's connections for real (the
// browser's offline emulation leaves an open event stream alone): drop() ends every connection,
// and while down() the proxy refuses new ones, as a network outage would.
import net from 'node:net';

export class CutProxy {
  constructor(target) {
    this.target = new URL(target);
    this.sockets = new Set();
    this.isDown = false;
    this.connections = 0;
  }

  async start() {
    this.server = net.createServer((client) => {
      if (this.isDown) {
        client.destroy();
        return;
      }
      this.connections++;
      const upstream = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).on('close', () => client.destroy());
      upstream.pipe(client).on('close', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  /** Cuts every open connection and refuses new ones until up(). */
  down() {
    this.isDown = true;
    for (const s of this.sockets) s.destroy();
  }

  up() {
    this.isDown = false;
  }

  async stop() {
    this.down();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
