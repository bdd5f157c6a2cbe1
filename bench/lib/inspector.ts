/**
 * The V8 heap of another process after a full garbage collection, through its inspector (the process runs with
 * `--inspect=127.0.0.1:0`). A heap sampled without a collection grows between major GCs and cannot tell garbage
 * from a leak; after `HeapProfiler.collectGarbage`, what is left is live.
 */
import WebSocket from 'ws';
import { waitFor } from '../../e2e/helpers/wait.js';

/** The inspector's WebSocket URL, from the "Debugger listening on ws://…" line the process writes to stderr. */
export async function inspectorUrl(stderr: () => string): Promise<string> {
  return waitFor(() => /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr())?.[1], 'the inspector URL on stderr', 10_000);
}

export class HeapInspector {
  private next = 1;
  private readonly pending = new Map<number, (r: { result?: unknown; error?: { message: string } }) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id !== undefined) this.pending.get(m.id)?.(m);
    });
  }

  static async connect(url: string): Promise<HeapInspector> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new HeapInspector(ws);
  }

  private call<T>(method: string, timeoutMs = 30_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector ${method} timed out`));
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(t);
        this.pending.delete(id);
        if (m.error) reject(new Error(`inspector ${method}: ${m.error.message}`));
        else resolve(m.result as T);
      });
      this.ws.send(JSON.stringify({ id, method }));
    });
  }

  /** Heap used after a full collection, in MB. */
  async liveHeapMB(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    const { usedSize } = await this.call<{ usedSize: number; totalSize: number }>('Runtime.getHeapUsage');
    return usedSize / 1e6;
  }

  close(): void {
    this.ws.close();
  }
}
