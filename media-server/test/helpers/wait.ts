/** Wait for a condition (never a fixed sleep to synchronise). */
export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, o: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 5000);
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? 'a condition'}`);
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 10));
  }
}
