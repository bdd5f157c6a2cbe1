import { randomBytes } from 'node:crypto';
import type { StageId } from '@stagecast/protocol';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 12 base62 characters (~71 bits) from crypto, by rejection sampling so every character is equally likely. */
export function newStageId(length = 12): StageId {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += BASE62[b % 62]; // 248 = 4 * 62: drop the biased tail
      if (out.length === length) break;
    }
  }
  return out as StageId;
}
