/**
 * Where every server event goes: applied to the state, appended to the journal, then sent to
 * the clients streaming events, all in the same call, so a stream never sees an event the
 * state does not hold yet, and history read in the same tick as a subscription neither misses
 * nor repeats an event.
 */
import { eventClass, eventJobs, isExported, isJournaled, type ServerEvent } from './events.js';
import { StreamBatch, type StreamRecord } from '../transport/stream-records.js';
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
  /** One frame's records (see stream-records.ts). */
  send(records: StreamRecord[]): void;
}

export function passes(filter: EventFilter, event: ServerEvent): boolean {
  if (filter.flags === 0 && filter.jobs === null) {
    return true;
  }
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

/**
 * Live events wait up to this long to share a frame: a busy server emits a few events per
 * event-loop turn, and one TLS record and write per turn per watcher is most of what a watcher
 * costs. A dashboard redraws a few times a second at most.
 */
const OUTBOX_DELAY_MS = 50;
/** ... or until this many wait. */
const OUTBOX_MAX_EVENTS = 20_000;

export class EventHub {
  private readonly subscribers = new Set<EventSubscriber>();
  /** Events per subscriber gathered until the outbox is sent. */
  private readonly outbox = new Map<EventSubscriber, StreamBatch>();
  private outboxTimer: NodeJS.Timeout | null = null;
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
          this.queue(s, time, event);
        }
      }
    }
  }

  private queue(subscriber: EventSubscriber, time: number, event: ServerEvent): void {
    let batch = this.outbox.get(subscriber);
    if (batch === undefined) {
      batch = new StreamBatch();
      this.outbox.set(subscriber, batch);
    }
    batch.add(time, event);
    if (batch.size >= OUTBOX_MAX_EVENTS) {
      this.flush();
    } else if (this.outboxTimer === null) {
      this.outboxTimer = setTimeout(() => this.flush(), OUTBOX_DELAY_MS);
    }
  }

  /** Sends what waits in the outbox now. */
  flush(): void {
    if (this.outboxTimer !== null) {
      clearTimeout(this.outboxTimer);
      this.outboxTimer = null;
    }
    for (const [s, batch] of this.outbox) {
      if (this.subscribers.has(s)) {
        for (const frame of batch.take()) {
          s.send(frame);
        }
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
    this.flush();
    this.subscribers.clear();
  }

  /** Resolves once every event so far is on disk (at once without a journal). */
  sync(): Promise<void> {
    return this.journal?.sync() ?? Promise.resolve();
  }
}
