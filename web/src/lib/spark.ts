/** A sparkline on a canvas: the last N values, scaled to their max, redrawn on each push. No chart library. */
export class Sparkline {
  private readonly values: number[] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly max = 120,
    private readonly color = '#4ea1ff',
  ) {}

  push(v: number): void {
    this.values.push(v);
    if (this.values.length > this.max) this.values.shift();
    this.draw();
  }

  /** Replaces the whole history (a series fetched at once, e.g. per-minute usage). */
  set(values: readonly number[]): void {
    this.values.splice(0, this.values.length, ...values.slice(-this.max));
    this.draw();
  }

  private draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const g = c.getContext('2d');
    if (!g) return;
    g.clearRect(0, 0, w, h);
    const n = this.values.length;
    if (n < 2) return;
    // Headroom above the peak, so a steady value reads as a line, not a filled block.
    const top = Math.max(1, ...this.values) * 1.25;
    // A young history fills the width from the left; once a minute's worth exists it scrolls.
    const span = Math.max(n, Math.min(this.max, 60));
    const x = (i: number) => (i / (span - 1)) * w;
    const y = (v: number) => h - 2 * dpr - (v / top) * (h - 4 * dpr);
    g.beginPath();
    this.values.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
    g.strokeStyle = this.color;
    g.lineWidth = 1.5 * dpr;
    g.stroke();
    g.lineTo(x(n - 1), h);
    g.lineTo(x(0), h);
    g.closePath();
    g.globalAlpha = 0.15;
    g.fillStyle = this.color;
    g.fill();
    g.globalAlpha = 1;
  }
}
