/**
 * ES384 signatures on a worker thread. A P-384 ECDSA signature costs ~0.8 ms of CPU here, one per viewer join:
 * on the event loop, a join storm of 1,000/s would spend most of it signing and every request would queue behind
 * the signatures. The worker holds its own copy of the private key and answers raw (r‖s, IEEE P1363) signatures,
 * the JWS form. A started worker is unref'd (it never holds the process open) and ended by close().
 */
import { Worker } from 'node:worker_threads';

// Plain JavaScript, evaluated in the worker: no TypeScript loader is needed there.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createPrivateKey, sign } = require('node:crypto');
const key = createPrivateKey({ key: workerData.jwk, format: 'jwk' });
parentPort.on('message', (m) => {
  try {
    const sig = sign('sha384', Buffer.from(m.input, 'latin1'), { key, dsaEncoding: 'ieee-p1363' });
    parentPort.postMessage({ id: m.id, sig: sig.toString('base64url') });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

export class Es384Signer {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void }>();
  private closed = false;

  /** `jwk`: the P-384 private key (with d). */
  constructor(private readonly jwk: Record<string, unknown>) {}

  /** The base64url signature of `input` (the JWS signing input, ASCII). */
  sign(input: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('signer closed'));
    const w = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, input });
    });
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { jwk: this.jwk } });
    w.unref();
    w.on('message', (m: { id: number; sig?: string; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.sig !== undefined) p.resolve(m.sig);
      else p.reject(new Error(`signing failed: ${m.error}`));
    });
    const fail = (err: Error) => {
      // The next sign() starts a new worker; what was waiting on this one fails.
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`signing worker exited (${code})`)));
    return w;
  }

  /** Ends the worker; signatures still pending fail. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
