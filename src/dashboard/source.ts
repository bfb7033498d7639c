/**
 * Where a dashboard's model gets its events, for both front ends: a journal's records (replay)
 * or a running server's history-then-live stream with worker overviews on.
 */
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
 * Follows the server: every batch of events is applied, then `onChange` runs. Resolves when
 * the stream ends (the server stopped or the session was closed).
 */
export function followInto(
  session: ClientSession,
  model: DashboardModel,
  onChange: () => void,
): Promise<void> {
  return session.stream({ mode: 'past-live', overviews: true }, (records) => {
    for (const r of records) {
      model.apply(r.time, r.event);
    }
    onChange();
  });
}
