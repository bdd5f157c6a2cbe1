/**
 * One copy of every recent source packet of one kind, indexed by router sequence number, serving
 * both NACKs (the last `nackWindow` packets) and the keyframe cache (every packet since the last
 * keyframe started, within `gopMax*` bounds; beyond them only the keyframe itself is kept).
 * Slot buffers are pooled: steady state allocates nothing but one exact-length view per packet,
 * and memory is bounded by the packets retained, not by the ring's capacity.
 */

export interface PacketStoreLimits {
  /** Ring capacity, a power of two larger than gopMaxPackets. */
  capacity: number;
  nackWindow: number;
  /** Keep a GOP at all (video). */
  gop: boolean;
  gopMaxPackets: number;
  gopMaxBytes: number;
  /** In RTP ticks. */
  gopMaxTicks: number;
  /** Packets larger than this are refused. */
  maxPacketBytes: number;
}

const SLOT_BYTES = 1500;

export class PacketStore {
  readonly limits: PacketStoreLimits;
  private readonly gopMaxMs: number;
  private readonly mask: number;
  private readonly views: Array<Uint8Array | undefined>;
  private readonly bufs: Array<Uint8Array | undefined>;
  private readonly seqs: Float64Array;
  private readonly tss: Float64Array;
  private readonly pool: Uint8Array[] = [];
  /** Highest router sequence number stored, -1 when empty. */
  highest = -1;
  /** Router timestamp of `highest`. */
  highestTs = 0;
  /** Oldest sequence number that may still be held (eviction cursor). */
  private tail = -1;
  /** Bytes of slot buffers in existence (held or pooled). */
  bytesAllocated = 0;
  retained = 0;
  /** GOP start (router seq of the first packet of the keyframe access unit), -1 = no GOP. */
  gopStart = -1;
  gopTs = 0;
  gopPackets = 0;
  gopBytes = 0;
  /** The GOP grew past its bounds: only the keyframe is kept, in kf* below. */
  degraded = false;
  /**
   * A packet of the GOP was lost for good (not recovered by NACK in time): the cache would replay a picture with a
   * hole, so it is not offered until the next keyframe starts a new GOP.
   */
  incomplete = false;
  kfViews: Uint8Array[] = [];
  kfBufs: Uint8Array[] = [];
  kfSeqs: number[] = [];
  kfTss: number[] = [];
  degradations = 0;

  constructor(limits: PacketStoreLimits) {
    this.limits = { ...limits };
    this.gopMaxMs = (limits.gopMaxTicks * 1000) / 90000;
    this.mask = limits.capacity - 1;
    this.views = new Array(limits.capacity).fill(undefined);
    this.bufs = new Array(limits.capacity).fill(undefined);
    this.seqs = new Float64Array(limits.capacity).fill(-1);
    this.tss = new Float64Array(limits.capacity);
  }

  has(seq: number): boolean {
    return this.seqs[seq & this.mask] === seq;
  }
  get(seq: number): Uint8Array | undefined {
    const i = seq & this.mask;
    return this.seqs[i] === seq ? this.views[i] : undefined;
  }
  tsOf(seq: number): number {
    return this.tss[seq & this.mask]!;
  }

  /** Lowest sequence number a new packet may have and still be stored. */
  lowerBound(): number {
    if (this.highest < 0) return -Infinity;
    let low = this.highest - this.limits.nackWindow + 1;
    if (this.gopStart >= 0 && !this.degraded && !this.incomplete && this.gopStart < low) low = this.gopStart;
    const cap = this.highest - this.limits.capacity + 1;
    return low < cap ? cap : low;
  }

  /**
   * Store a copy of `packet[0, len)` as `seq` / `ts`. Returns the stored view, or undefined when the
   * packet is a duplicate, too old, or too large.
   */
  put(seq: number, ts: number, packet: Uint8Array, len: number): Uint8Array | undefined {
    if (len > this.limits.maxPacketBytes) return undefined;
    const i = seq & this.mask;
    if (this.seqs[i] === seq) return undefined;
    if (seq > this.highest) {
      if (this.highest < 0) this.tail = seq;
      this.highest = seq;
      this.highestTs = ts;
      if (this.gopStart >= 0 && this.gopStart < seq - this.limits.capacity + 1) this.clearGop();
      this.evictBelow(this.lowerBound());
    } else if (seq < this.lowerBound()) return undefined;
    if (this.seqs[i]! >= 0) this.release(i);
    let buf = this.pool.pop();
    if (buf && buf.length < len) {
      this.bytesAllocated -= buf.length;
      buf = undefined;
    }
    if (!buf) {
      buf = new Uint8Array(len > SLOT_BYTES ? len : SLOT_BYTES);
      this.bytesAllocated += buf.length;
    }
    buf.set(packet.length === len ? packet : packet.subarray(0, len));
    const view = buf.subarray(0, len);
    this.bufs[i] = buf;
    this.views[i] = view;
    this.seqs[i] = seq;
    this.tss[i] = ts;
    this.retained++;
    if (seq < this.tail) this.tail = seq;
    if (this.gopStart >= 0 && !this.degraded && !this.incomplete && seq >= this.gopStart) {
      this.gopPackets++;
      this.gopBytes += len;
      const l = this.limits;
      if (this.gopPackets > l.gopMaxPackets || this.gopBytes > l.gopMaxBytes || ts - this.gopTs > l.gopMaxTicks) this.degrade();
    }
    return view;
  }

  private release(i: number): void {
    const buf = this.bufs[i];
    if (buf) this.pool.push(buf);
    this.bufs[i] = undefined;
    this.views[i] = undefined;
    this.seqs[i] = -1;
    this.retained--;
  }

  private evictBelow(low: number): void {
    if (this.tail >= low) return;
    // Bounded: at most one pass over the ring.
    if (low - this.tail >= this.limits.capacity) {
      for (let i = 0; i < this.limits.capacity; i++) if (this.seqs[i]! >= 0 && this.seqs[i]! < low) this.release(i);
    } else {
      for (let s = this.tail; s < low; s++) {
        const i = s & this.mask;
        if (this.seqs[i] === s) this.release(i);
      }
    }
    this.tail = low;
  }

  /** A keyframe access unit starts at `seq` (already stored, or the next to come). */
  startGop(seq: number, ts: number): void {
    this.clearGop();
    this.gopStart = seq;
    this.gopTs = ts;
    this.gopPackets = 0;
    this.gopBytes = 0;
    for (let s = seq; s <= this.highest; s++) {
      const v = this.get(s);
      if (v) {
        this.gopPackets++;
        this.gopBytes += v.length;
      }
    }
  }

  /**
   * Keep only the keyframe's packets, outside the ring, and let the ring go back to the NACK window. The keyframe's
   * buffers are shared, not moved: while a slot is still inside the NACK window it stays readable there (bufs[i] is
   * cleared so that evicting the slot does not pool a buffer the keyframe list still holds).
   */
  private degrade(): void {
    this.degradations++;
    for (let s = this.gopStart; s <= this.highest; s++) {
      const i = s & this.mask;
      if (this.seqs[i] !== s) continue;
      if (this.tss[i] !== this.gopTs) break;
      this.kfViews.push(this.views[i]!);
      this.kfBufs.push(this.bufs[i]!);
      this.kfSeqs.push(s);
      this.kfTss.push(this.tss[i]!);
      this.bufs[i] = undefined;
    }
    this.degraded = true;
    this.evictBelow(this.lowerBound());
  }

  /** Drop the keyframe list; a buffer whose ring slot still shows it goes back to that slot, the rest to the pool. */
  private releaseKeyframeList(): void {
    for (let k = 0; k < this.kfBufs.length; k++) {
      const s = this.kfSeqs[k]!;
      const i = s & this.mask;
      if (this.seqs[i] === s && this.bufs[i] === undefined && this.views[i] === this.kfViews[k]) this.bufs[i] = this.kfBufs[k];
      else this.pool.push(this.kfBufs[k]!);
    }
    this.kfBufs = [];
    this.kfViews = [];
    this.kfSeqs = [];
    this.kfTss = [];
  }

  clearGop(): void {
    this.releaseKeyframeList();
    this.degraded = false;
    this.incomplete = false;
    this.gopStart = -1;
    this.gopPackets = 0;
    this.gopBytes = 0;
    if (this.highest >= 0) this.evictBelow(this.lowerBound());
  }

  /** The GOP duration bound is in ms; convert it for the source's clock rate. */
  gopMaxTicksFor(clockRate: number): void {
    if (clockRate > 0) this.limits.gopMaxTicks = (this.gopMaxMs * clockRate) / 1000;
  }

  /** A keyframe and (unless degraded) everything after it is held, with no packet lost for good. */
  hasGop(): boolean {
    return this.gopStart >= 0 && !this.incomplete && (this.degraded ? this.kfViews.length > 0 : true);
  }

  /** A packet with router seq `seq` will never arrive: a GOP that should hold it cannot be replayed whole. */
  lostForGood(seq: number): boolean {
    if (this.gopStart < 0 || seq < this.gopStart || this.incomplete) return false;
    this.incomplete = true;
    // Nothing of this GOP will be replayed: the ring goes back to the NACK window.
    if (this.highest >= 0) this.evictBelow(this.lowerBound());
    return true;
  }

  /** Packets currently held (ring + keyframe list) and pooled buffers, for the bounded-memory checks. */
  footprint(): { retained: number; keyframePackets: number; pooled: number; bytesAllocated: number } {
    return { retained: this.retained, keyframePackets: this.kfViews.length, pooled: this.pool.length, bytesAllocated: this.bytesAllocated };
  }

  clear(): void {
    this.clearGop();
    for (let i = 0; i < this.limits.capacity; i++) if (this.seqs[i]! >= 0) this.release(i);
    this.pool.length = 0;
    this.bytesAllocated = 0;
    this.highest = -1;
    this.tail = -1;
  }
}
