/**
 * Where every server event goes: applied to the state, appended to the journal, then sent to
 * the clients streaming events, all in the same call, so a stream never sees an event the
 * state does not hold yet, and history read in the same tick as a subscription neither misses
 * nor repeats an event.
 */
import {
  eventClass,
  eventJobs,
  isExported,
  isJournaled,
  type ServerEvent,
  type TimedEvent,
} from './events.js';
import type { JournalWriter } from './journal/writer.js';
import type { ServerState } from './state.js';

export interface EventFilter {
  /** Upstream's flags (EVENT_FILTER); 0 or undefined: everything. */
  flags: number;
  /** Only events about these jobs (null: any); events about no job pass the flag check alone. */
  jobs: Set<number> | null;
}

export interface EventSubscriber {
  filter: EventFilter;
  send(records: TimedEvent[]): void;
}

export function passes(filter: EventFilter, event: ServerEvent): boolean {
  const cls = eventClass(event);
  if (cls === 0) {
    return true;
  }
  if (filter.flags !== 0 && (filter.flags & cls) === 0) {
    return false;
  }
  if (filter.jobs !== null) {
    const jobs = eventJobs(event);
    if (jobs.length > 0 && !jobs.some((j) => filter.jobs!.has(j))) {
      return false;
    }
  }
  return true;
}

export class EventHub {
  private readonly subscribers = new Set<EventSubscriber>();
  /** Events per subscriber gathered during this turn, sent as one frame. */
  private readonly outbox = new Map<EventSubscriber, TimedEvent[]>();
  private outboxQueued = false;
  readonly state: ServerState;
  readonly journal: JournalWriter | null;
  /** Decides whether an overview goes into the journal (only for workers that asked for them). */
  journalOverview: (workerId: number) => boolean = () => false;

  constructor(state: ServerState, journal: JournalWriter | null) {
    this.state = state;
    this.journal = journal;
  }

  emit(event: ServerEvent, time = Date.now()): void {
    this.state.apply(time, event);
    if (
      this.journal !== null &&
      isJournaled(event) &&
      (event.type !== 'worker-overview' || this.journalOverview(event.id))
    ) {
      this.journal.append(time, event);
    }
    if (this.subscribers.size > 0 && isExported(event)) {
      for (const s of this.subscribers) {
        if (passes(s.filter, event)) {
          this.queue(s, { time, event });
        }
      }
    }
  }

  private queue(subscriber: EventSubscriber, record: TimedEvent): void {
    let list = this.outbox.get(subscriber);
    if (list === undefined) {
      list = [];
      this.outbox.set(subscriber, list);
    }
    list.push(record);
    if (!this.outboxQueued) {
      this.outboxQueued = true;
      setImmediate(() => this.sendOutbox());
    }
  }

  private sendOutbox(): void {
    this.outboxQueued = false;
    for (const [s, records] of this.outbox) {
      if (this.subscribers.has(s)) {
        s.send(records);
      }
    }
    this.outbox.clear();
  }

  subscribe(subscriber: EventSubscriber): () => void {
    this.subscribers.add(subscriber);
    return () => {
      this.subscribers.delete(subscriber);
      this.outbox.delete(subscriber);
    };
  }

  /** Drops every subscriber without telling it (the server is stopping). */
  dropSubscribers(): void {
    this.sendOutbox();
    this.subscribers.clear();
  }

  /** Resolves once every event so far is on disk (at once without a journal). */
  sync(): Promise<void> {
    return this.journal?.sync() ?? Promise.resolve();
  }
}
