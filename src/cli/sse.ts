/**
 * A Server-Sent Events parser as the HTML Living Standard's "event stream interpretation" has it (§9.2.6): lines end
 * in CRLF, LF or CR; a blank line dispatches; `:` starts a comment; `data` lines join with LF; `event` names the
 * frame (`message` when absent); `id` is kept across frames; a frame with no data is dropped.
 */

export interface SseFrame {
  readonly event: string;
  readonly data: string;
  /** The last `id:` seen on the stream so far (the stream's position), '' when none. */
  readonly id: string;
}

export class SseParser {
  private pending = '';
  /** A chunk ended in CR: an LF at the start of the next one belongs to the same line end. */
  private afterCr = false;
  private data: string[] = [];
  private event = '';
  private lastId = '';

  /** Feeds decoded text (any split, even mid-line); returns the frames it completed, in order. */
  push(text: string): SseFrame[] {
    let chunk = text;
    if (this.afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.afterCr = false;
    const frames: SseFrame[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.pending + chunk.slice(start, i), frames);
      this.pending = '';
      if (c === 13) {
        if (i + 1 === chunk.length) this.afterCr = true;
        else if (chunk.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.pending += chunk.slice(start);
    return frames;
  }

  private line(line: string, frames: SseFrame[]): void {
    if (line === '') {
      this.dispatch(frames);
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data': this.data.push(value); break;
      case 'event': this.event = value; break;
      case 'id': if (!value.includes('\0')) this.lastId = value; break;
      default: break; // `retry` and unknown fields are ignored, as the standard says.
    }
  }

  private dispatch(frames: SseFrame[]): void {
    if (this.data.length > 0) frames.push({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
    this.data = [];
    this.event = '';
  }
}
