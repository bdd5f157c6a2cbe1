import { createServer } from 'node:net';

/** An unused TCP port on 127.0.0.1 (inside a private namespace nothing else can take it before we do). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
