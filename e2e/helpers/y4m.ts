/**
 * A "busy" test picture for Chromium's fake camera (--use-file-for-fake-video-capture): Y4M, 4:2:0, so the encoder
 * spends the bitrate it is given — as a real camera feed in OBS does — instead of the ~370 kbps its built-in test
 * pattern needs. Impairment tests use it to put an OBS-like packet rate on the lossy hop.
 *
 * A still texture of flat 8x8 blocks under fresh grain every frame: detail the encoder cannot predict, which takes
 * the bits (2.5 Mbps at ±8 grain). No motion on purpose: a pan of that texture, even a wrapping one, made Chromium's
 * H.264 encoder (OpenH264, scene-change detection) send a keyframe about every second, which would hide loss
 * recovery behind keyframes nobody asked for; still + grain gives none unless requested, as a camera feed does.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mulberry32 } from '@stagecast/rtc/testing';

export function writeBusyY4m(path: string, o: { width?: number; height?: number; fps?: number; frames?: number; grain?: number; seed?: number } = {}): void {
  const w = o.width ?? 640;
  const h = o.height ?? 480;
  const frames = o.frames ?? 60;
  const grain = o.grain ?? 8;
  const rnd = mulberry32(o.seed ?? 1);
  const texture = new Uint8Array(w * h);
  for (let by = 0; by < h; by += 8) {
    for (let bx = 0; bx < w; bx += 8) {
      const v = 32 + Math.floor(rnd() * 192);
      for (let r = 0; r < 8; r++) texture.fill(v, (by + r) * w + bx, (by + r) * w + bx + 8);
    }
  }
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `YUV4MPEG2 W${w} H${h} F${o.fps ?? 20}:1 Ip A1:1 C420jpeg\n`);
    const y = Buffer.alloc(w * h);
    const chroma = Buffer.alloc((w / 2) * (h / 2) * 2, 128);
    for (let f = 0; f < frames; f++) {
      for (let i = 0; i < w * h; i++) {
        const v = texture[i]! + Math.floor((rnd() * 2 - 1) * grain);
        y[i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      writeSync(fd, 'FRAME\n');
      writeSync(fd, y);
      writeSync(fd, chroma);
    }
  } finally {
    closeSync(fd);
  }
}
