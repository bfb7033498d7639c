/**
 * The terminal under the dashboard: the alternate screen, raw keys, redraws of only the lines
 * that changed, and resizes. It owns the terminal's state and gives it back on every way out
 * (`close()`, process exit, an uncaught error), so a shell is never left in raw mode.
 */
import * as readline from 'node:readline';

const ENTER = '\x1b[?1049h\x1b[?25l\x1b[2J';
const LEAVE = '\x1b[?25h\x1b[?1049l';

export interface KeyPress {
  /** readline's key name (`up`, `backspace`, `escape`, a letter), or the character typed. */
  name: string;
  ctrl: boolean;
}

export class Terminal {
  private readonly output: NodeJS.WriteStream;
  private readonly input: NodeJS.ReadStream;
  private previous: string[] = [];
  private open = false;
  private readonly onExit = (): void => this.restore();
  private readonly onKeypress: (text: string | undefined, key: readline.Key | undefined) => void;
  private readonly onResize = (): void => {
    this.previous = [];
    this.resized?.();
  };
  private resized: (() => void) | null = null;

  constructor(
    output: NodeJS.WriteStream,
    input: NodeJS.ReadStream,
    onKey: (key: KeyPress) => void,
  ) {
    this.output = output;
    this.input = input;
    this.onKeypress = (text, key) => {
      const name = key?.name ?? text ?? '';
      if (name !== '') {
        onKey({ name, ctrl: key?.ctrl === true });
      }
    };
  }

  get width(): number {
    return this.output.columns ?? 80;
  }

  get height(): number {
    return this.output.rows ?? 24;
  }

  /** Takes the terminal over; `onResize` is called after the size changed. */
  start(onResize: () => void): void {
    this.resized = onResize;
    this.open = true;
    process.on('exit', this.onExit);
    readline.emitKeypressEvents(this.input);
    if (this.input.isTTY) {
      this.input.setRawMode(true);
    }
    this.input.on('keypress', this.onKeypress);
    this.input.resume();
    this.output.on('resize', this.onResize);
    this.output.write(ENTER);
  }

  /** Writes the lines of `frame` that differ from the last frame drawn. */
  draw(frame: readonly string[]): void {
    if (!this.open) {
      return;
    }
    let out = '';
    for (let i = 0; i < frame.length; i++) {
      if (frame[i] !== this.previous[i]) {
        out += `\x1b[${i + 1};1H${frame[i]}`;
      }
    }
    this.previous = [...frame];
    if (out !== '') {
      this.output.write(out);
    }
  }

  /** Gives the terminal back (idempotent). */
  restore(): void {
    if (!this.open) {
      return;
    }
    this.open = false;
    this.input.off('keypress', this.onKeypress);
    this.output.off('resize', this.onResize);
    process.off('exit', this.onExit);
    if (this.input.isTTY) {
      this.input.setRawMode(false);
    }
    this.input.pause();
    this.output.write(LEAVE);
  }
}
