/**
 * Runs the terminal dashboard until `q` or Ctrl-C (exit 0), or until a streamed server stops:
 * feeds the model, redraws at most every FRAME_MS when something changed (and every second in
 * live mode, as time moves), and gives the terminal back on every way out.
 */
import { HqError } from '../../common/errors.js';
import type { ClientSession } from '../../client/session.js';
import type { TimedEvent } from '../../server/events.js';
import { DashboardModel } from '../model.js';
import { followInto, replayInto } from '../source.js';
import { initialState, key, render, type AppState } from './app.js';
import { Terminal } from './terminal.js';

const FRAME_MS = 100;
const LIVE_TICK_MS = 1000;
/** Replay opens on the last 5 minutes of the journal. */
const REPLAY_WINDOW_MS = 5 * 60_000;

export const NO_JOURNAL_WARNING =
  'The server does not use a journal: the history shown was reconstructed from what the server still holds (finished jobs it forgot are missing). Consider passing `--journal <path>` to `hq server start`.';

export type DashboardSource =
  | { kind: 'replay'; records: TimedEvent[] }
  | { kind: 'stream'; session: ClientSession; journal: boolean };

function checkTerminal(): void {
  if (process.stdout.isTTY !== true || process.stdin.isTTY !== true) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      'hq dashboard needs a terminal (stdin and stdout must be a TTY)',
    );
  }
}

export async function runDashboard(source: DashboardSource): Promise<number> {
  checkTerminal();
  const model = new DashboardModel();
  let state: AppState;
  let now: () => number;
  if (source.kind === 'replay') {
    const end = replayInto(model, source.records);
    now = () => end;
    state = initialState('replay', { kind: 'fixed', start: end - REPLAY_WINDOW_MS, end });
  } else {
    now = () => Date.now();
    state = initialState('stream');
    if (!source.journal) {
      state.popup = NO_JOURNAL_WARNING;
    }
  }
  let dirty = true;
  let lastDraw = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const terminal = new Terminal(process.stdout, process.stdin, (k) => {
    if (k.ctrl && k.name === 'c') {
      finish(0);
      return;
    }
    if (!key(state, k.name, now())) {
      finish(0);
      return;
    }
    dirty = true;
  });
  const draw = (): void => {
    terminal.draw(render(model, state, now(), terminal.width, terminal.height));
    dirty = false;
    lastDraw = Date.now();
  };
  let timer: NodeJS.Timeout | null = null;
  let streamEnded: Promise<void> | null = null;
  try {
    terminal.start(() => {
      dirty = true;
    });
    if (source.kind === 'stream') {
      streamEnded = followInto(source.session, model, () => {
        dirty = true;
      });
      streamEnded.then(
        () => finish(0),
        () => finish(0),
      );
    }
    draw();
    timer = setInterval(() => {
      const live = state.mode === 'stream' && state.range.kind === 'live';
      if (dirty || (live && Date.now() - lastDraw >= LIVE_TICK_MS)) {
        draw();
      }
    }, FRAME_MS);
    const code = await done;
    return code;
  } finally {
    if (timer !== null) {
      clearInterval(timer);
    }
    terminal.restore();
    if (source.kind === 'stream') {
      source.session.close();
    }
  }
}
