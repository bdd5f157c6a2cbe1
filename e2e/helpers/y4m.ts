/**
 * A "busy" test picture for Chromium's fake camera (--use-file-for-fake-video-capture): Y4M, 4:2:0, moving
 * high-contrast texture that motion search cannot predict well, so the encoder spends the bitrate it is allowed —
 * as a real camera feed in OBS does — instead of the ~370 kbps its built-in test pattern needs. Impairment tests use
 * it to put an OBS-like packet rate on the lossy hop. Chromium loops the file.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { prng } from './udp-relay.js';

export function writeBusyY4m(path: string, o: { width?: number; height?: number; fps?: number; frames?: number; seed?: number } = {}): void {
  const w = o.width ?? 640;
  const h = o.height ?? 480;
  const frames = o.frames ?? 40;
  const rnd = prng(o.seed ?? 1);
  // A field of flat 8x8 blocks of random brightness, twice as wide as the picture; each frame shows a window of it
  // shifted by 7 px (edges move across block boundaries) and repaints 5 % of its blocks: motion plus new detail.
  const fw = w * 2;
  const field = new Uint8Array(fw * h);
  const paint = (bx: number, by: number) => {
    const v = Math.floor(rnd() * 256);
    for (let r = 0; r < 8; r++) field.fill(v, (by + r) * fw + bx, (by + r) * fw + bx + 8);
  };
  for (let by = 0; by < h; by += 8) for (let bx = 0; bx < fw; bx += 8) paint(bx, by);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `YUV4MPEG2 W${w} H${h} F${o.fps ?? 20}:1 Ip A1:1 C420jpeg\n`);
    const y = Buffer.alloc(w * h);
    const chroma = Buffer.alloc((w / 2) * (h / 2) * 2, 128);
    for (let f = 0; f < frames; f++) {
      for (let b = 0; b < (fw * h) / 64 / 20; b++) paint(Math.floor(rnd() * (fw / 8)) * 8, Math.floor(rnd() * (h / 8)) * 8);
      const dx = (f * 7) % w;
      for (let r = 0; r < h; r++) y.set(field.subarray(r * fw + dx, r * fw + dx + w), r * w);
      writeSync(fd, 'FRAME\n');
      writeSync(fd, y);
      writeSync(fd, chroma);
    }
  } finally {
    closeSync(fd);
  }
}
