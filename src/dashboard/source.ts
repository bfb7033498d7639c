/**
 * Where a dashboard's model gets its events, for both front ends: a journal's records (replay)
 * or a running server's history-then-live stream with worker overviews on.
 */
import * as os from 'node:os';
import type { ClientSession } from '../client/session.js';
import type { TimedEvent } from '../server/events.js';
import type { DashboardModel } from './model.js';

/** Applies a journal's records; returns the moment it ends (a replay's "now"). */
export function replayInto(model: DashboardModel, records: readonly TimedEvent[]): number {
  for (const r of records) {
    model.apply(r.time, r.event);
  }
  return model.lastTime ?? Date.now();
}

/**
 * How much lower than the server a following dashboard runs. It shares the login node with the
 * server it watches, which has every event to handle while the dashboard only draws them late:
 * on a busy node the server gets the CPU first.
 */
const FOLLOWER_NICENESS = 10;

/**
 * Follows the server: every batch of events is applied, then `onChange` runs. Resolves when
 * the stream ends (the server stopped or the session was closed).
 */
export function followInto(
  session: ClientSession,
  model: DashboardModel,
  onChange: () => void,
): Promise<void> {
  try {
    os.setPriority(Math.min(19, os.getPriority() + FOLLOWER_NICENESS));
  } catch {
    // A priority is a courtesy: where it cannot be changed, the dashboard runs as it is.
  }
  return session.stream({ mode: 'past-live', overviews: true }, (records) => {
    for (const r of records) {
      model.apply(r.time, r.event);
    }
    onChange();
  });
}
