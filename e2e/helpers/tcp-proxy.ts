/**
 * A TCP proxy on 127.0.0.1 in front of one upstream port: put it between one client and its server to cut that
 * client off alone. cut() drops every connection through it and refuses new ones (reset at once) until resume().
 */
import { createServer, connect, type Socket } from 'node:net';
import { freePort } from './ports.js';

export interface TcpProxy {
  port: number;
  /** Connections accepted while open. */
  readonly accepted: number;
  cut(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const live = new Set<Socket>();
  let open = true;
  let accepted = 0;
  const server = createServer((client) => {
    if (!open) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      open = false;
      for (const s of live) s.destroy();
      live.clear();
    },
    resume() {
      open = true;
    },
    async close() {
      open = false;
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
