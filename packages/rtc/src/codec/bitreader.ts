/**
 * Bit reader over an H.264 RBSP held in its NAL form: emulation-prevention bytes (00 00 03) are
 * skipped on the fly, so no copy of the NAL is needed. Reading past the end never throws: it
 * returns 0 and sets `overrun`, which parsers check once at the end.
 */
export class NalBitReader {
  private buf: Uint8Array;
  private pos: number;
  private end: number;
  private bit = 0;
  private cur = 0;
  private zeros = 0;
  overrun = false;

  constructor(buf: Uint8Array, start: number, end: number) {
    this.buf = buf;
    this.pos = start;
    this.end = Math.min(end, buf.length);
    this.load();
  }

  private load(): void {
    // Running off the end is only an error when a further bit is actually read (see u1).
    if (this.pos >= this.end) {
      this.cur = 0;
      return;
    }
    let b = this.buf[this.pos]!;
    if (this.zeros >= 2 && b === 3) {
      this.zeros = 0;
      this.pos++;
      if (this.pos >= this.end) {
        this.cur = 0;
        return;
      }
      b = this.buf[this.pos]!;
    }
    this.zeros = b === 0 ? this.zeros + 1 : 0;
    this.cur = b;
  }

  u1(): number {
    if (this.overrun) return 0;
    if (this.pos >= this.end) {
      this.overrun = true;
      return 0;
    }
    const v = (this.cur >> (7 - this.bit)) & 1;
    if (++this.bit === 8) {
      this.bit = 0;
      this.pos++;
      this.load();
    }
    return v;
  }

  /** Up to 32 bits. */
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.u1();
    return v;
  }

  /** Unsigned exp-Golomb. More than 31 leading zeros is invalid: sets overrun. */
  ue(): number {
    let zeros = 0;
    while (this.u1() === 0) {
      if (this.overrun || ++zeros > 31) {
        this.overrun = true;
        return 0;
      }
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }

  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }

  /** True when at least one more bit is available. */
  more(): boolean {
    return !this.overrun && this.pos < this.end;
  }
}
