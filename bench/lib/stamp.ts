/**
 * The bench's in-band clock: the source writes its send time into a fixed slot at the END of every stamped RTP
 * payload (the router forwards payloads untouched), and every receiver reads it back. All processes run on one
 * machine, so CLOCK_MONOTONIC (process.hrtime, which performance.now() is derived from) is shared between them.
 *
 * Slot (last 16 bytes of the packet): magic u32 'SCB1' | index u32 (video frame or audio packet number) | send time
 * f64 (ms of CLOCK_MONOTONIC). The STAP-A (SPS+PPS) packet of a keyframe is never stamped: it must stay parseable.
 */
export const STAMP_MAGIC = 0x53434231;
export const STAMP_BYTES = 16;

/**
 * performance.now() is cheap and reads the same clock as process.hrtime (uv_hrtime) from another origin: anchor it
 * once to CLOCK_MONOTONIC so values compare across processes. Best of 200 bracketed readings, so a process that is
 * descheduled between two reads (a busy machine) does not shift its clock by milliseconds.
 */
function anchor(): number {
  let best = Infinity;
  let offset = 0;
  for (let i = 0; i < 200; i++) {
    const a = performance.now();
    const h = Number(process.hrtime.bigint()) / 1e6;
    const b = performance.now();
    if (b - a < best) {
      best = b - a;
      offset = h - (a + b) / 2;
    }
  }
  return offset;
}
const OFFSET_MS = anchor();

/** Milliseconds of CLOCK_MONOTONIC (comparable between processes on this machine). */
export const monoMs = (): number => performance.now() + OFFSET_MS;

/** Wall clock (epoch ms, sub-ms resolution): comparable with pino's `time` in the apps' logs. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export function writeStamp(packet: Uint8Array, index: number, sentMs: number): void {
  const dv = new DataView(packet.buffer, packet.byteOffset + packet.length - STAMP_BYTES, STAMP_BYTES);
  dv.setUint32(0, STAMP_MAGIC);
  dv.setUint32(4, index >>> 0);
  dv.setFloat64(8, sentMs);
}

const scratch = new DataView(new ArrayBuffer(STAMP_BYTES));
const scratchBytes = new Uint8Array(scratch.buffer);

/** The stamp of a received packet, or false. `out` is reused (no allocation per packet). */
export function readStamp(packet: Uint8Array, minLength: number, out: { index: number; sentMs: number }): boolean {
  const n = packet.length;
  if (n < minLength + STAMP_BYTES) return false;
  const o = n - STAMP_BYTES;
  if (packet[o] !== 0x53 || packet[o + 1] !== 0x43 || packet[o + 2] !== 0x42 || packet[o + 3] !== 0x31) return false;
  for (let i = 4; i < STAMP_BYTES; i++) scratchBytes[i] = packet[o + i]!;
  out.index = scratch.getUint32(4);
  out.sentMs = scratch.getFloat64(8);
  return true;
}
