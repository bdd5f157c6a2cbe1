/**
 * The scaler lease: with several API Servers sharing one store, the jobs that must run once for the whole pool
 * (creating and deleting stages, reconciling with the provider, consolidation, the cost meter, IVS endpoint and
 * viewer checks) run only on the holder. SQLite serves one API Server: its lease is always held.
 */
export interface ScalerLease {
  /** Whether this API Server holds the lease now (it may be lost at any renewal). */
  readonly held: boolean;
  /** Called with the new value each time `held` changes. Returns the unsubscribe. */
  onChange(fn: (held: boolean) => void): () => void;
  start(): Promise<void>;
  /** Stops renewing and releases the lease (another API Server takes over at once). */
  stop(): Promise<void>;
}

/** One API Server (SQLite): the lease is always held. */
export class LocalLease implements ScalerLease {
  readonly held = true;
  onChange(): () => void {
    return () => undefined;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}
