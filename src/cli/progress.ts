/** A one-line progress bar on stderr when it is a terminal; silent otherwise. */
export class ProgressBar {
  private readonly enabled = process.stderr.isTTY === true;
  private last = 0;

  constructor(private readonly label: string, private readonly total: number) {}

  update(done: number, unit = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    const ratio = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const width = 30;
    const filled = Math.round(ratio * width);
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${done}${unit}`);
  }

  finish(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}
