/**
 * Client connections: every request is validated, dispatched to the server, and answered
 * with exactly one response. Modifying requests are answered only once their events are on
 * disk (with a journal), so an acknowledged submit survives a crash.
 */
import { StreamBatch, type StreamRecord } from '../transport/stream-records.js';
import { errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import type { Connection } from '../transport/connection.js';
import type { ClientRequest, ClientRpc, ServerResponse } from '../transport/messages.js';
import { parseClientRequest } from '../transport/validate.js';
import { isExported } from './events.js';
import { passes, type EventFilter } from './event-hub.js';
import type { HqServer } from './server.js';
import { jobDetail, jobInfo } from './state.js';
import { workerInfo } from './workers.js';

const log = logger('hq::server');

/** The unanswered `wait-jobs` of each client connection, dropped when it closes. */
const pendingWaits = new WeakMap<Connection, Set<() => void>>();

export function onClientConnection(server: HqServer, connection: Connection): void {
  server.clients.add(connection);
  const waits = new Set<() => void>();
  pendingWaits.set(connection, waits);
  connection.onClose(() => {
    server.clients.delete(connection);
    for (const cancel of waits) {
      cancel();
    }
    waits.clear();
  });
  connection.listen((raw) => {
    let request: ClientRequest;
    try {
      request = parseClientRequest(raw);
    } catch (e) {
      log.warn(`closing client connection: ${errorMessage(e)}`);
      connection.close('invalid request');
      return;
    }
    handleClientRequest(server, connection, request);
  });
}

function send(connection: Connection, message: ServerResponse): void {
  connection.send(message);
}

function reply(connection: Connection, reqId: number, data: unknown): void {
  send(connection, { op: 'response', reqId, ok: true, data });
}

function fail(connection: Connection, reqId: number, e: unknown): void {
  send(connection, { op: 'response', reqId, ok: false, error: errorMessage(e) });
}

/** Replies once `work` settles and everything it recorded is durable. */
function replyDurable(
  server: HqServer,
  connection: Connection,
  reqId: number,
  work: () => unknown,
): void {
  Promise.resolve()
    .then(work)
    .then(async (data) => {
      // The operation has happened: a failed sync is the server's problem to report, not a
      // failed request (a client would submit again and duplicate the job).
      await server.hub
        .sync()
        .catch((e: unknown) => log.error(`journal sync failed: ${errorMessage(e)}`));
      return data;
    })
    .then(
      (data) => reply(connection, reqId, data),
      (e: unknown) => fail(connection, reqId, e),
    );
}

function streamEvents(
  server: HqServer,
  connection: Connection,
  request: Extract<ClientRequest, { op: 'journal-stream' }>,
): void {
  const { reqId } = request;
  const filter: EventFilter = {
    flags: request.filter ?? 0,
    jobs: request.jobs === undefined || request.jobs === null ? null : new Set(request.jobs),
  };
  const sendRecords = (records: StreamRecord[]): void => {
    send(connection, { op: 'events', reqId, records });
  };
  // History and subscription in the same tick: no event is missed or told twice.
  if (request.mode !== 'live') {
    const past = new StreamBatch();
    for (const r of server.history()) {
      if (isExported(r.event) && passes(filter, r.event)) {
        past.add(r.time, r.event);
      }
    }
    for (const frame of past.take()) {
      sendRecords(frame);
    }
  }
  if (request.mode === 'past') {
    reply(connection, reqId, null);
    return;
  }
  const unsubscribe = server.hub.subscribe({ filter, send: sendRecords });
  const release = request.overviews === true ? server.watchOverviews() : null;
  connection.onClose(() => {
    unsubscribe();
    release?.();
  });
}

export function handleClientRequest(
  server: HqServer,
  connection: Connection,
  request: ClientRequest,
): void {
  const { reqId } = request;
  try {
    switch (request.op) {
      case 'server-info':
        return reply(connection, reqId, server.info());
      case 'server-stop':
        log.info('stop requested by a client');
        reply(connection, reqId, null);
        void connection.flush().then(() => server.stop());
        return;
      case 'debug-dump':
        return reply(connection, reqId, server.debugDump());
      case 'submit':
        return replyDurable(server, connection, reqId, () => server.submit(request));
      case 'submit-graph':
        return replyDurable(server, connection, reqId, () => server.submitGraph(request));
      case 'task-explain':
        return reply(connection, reqId, server.explain(request.selector, request.taskId));
      case 'job-open':
        return replyDurable(server, connection, reqId, () =>
          server.openJob(request.name, request.maxFails),
        );
      case 'job-close':
        return replyDurable(server, connection, reqId, () => server.closeJobs(request.selector));
      case 'job-forget':
        return reply(connection, reqId, server.forgetJobs(request.selector, request.states));
      case 'job-list':
        return reply(
          connection,
          reqId,
          [...server.jobs.values()].map((j) => jobInfo(j)),
        );
      case 'job-info': {
        const { found, missing } = server.selectJobs(request.selector);
        const data: ClientRpc['job-info']['res'] = {
          jobs: found.map((j) => jobDetail(j, request.withTasks)),
          missing,
        };
        return reply(connection, reqId, data);
      }
      case 'job-cancel':
        return replyDurable(server, connection, reqId, () =>
          server.cancelJobs(request.selector, request.reason),
        );
      case 'wait-jobs': {
        // A client that hangs up (Ctrl-C on `hq job wait`) must not leave its waiter behind.
        const waits = pendingWaits.get(connection);
        let cancel: (() => void) | null = null;
        let answered = false;
        cancel = server.waitJobs(
          request.selector,
          request.withoutClose,
          (data) => {
            answered = true;
            if (cancel !== null) {
              waits?.delete(cancel);
            }
            reply(connection, reqId, data);
          },
          request.notify === true
            ? (notification) => send(connection, { op: 'event', reqId, notification })
            : null,
        );
        if (!answered) {
          waits?.add(cancel);
        }
        return;
      }
      case 'worker-list':
        return reply(
          connection,
          reqId,
          [...server.workers.values()].map((w) => workerInfo(w)),
        );
      case 'worker-info': {
        const { found, missing } = server.selectWorkers(request.selector);
        return reply(connection, reqId, {
          workers: found.map((w) => workerInfo(w)),
          missing,
        });
      }
      case 'worker-stop':
        return reply(connection, reqId, server.stopWorkers(request.selector));
      case 'alloc-add': {
        const service = server.autoallocService();
        return replyDurable(server, connection, reqId, async () => ({
          queueId: await service.addQueue(request.params, request.dryRun),
        }));
      }
      case 'alloc-dry-run': {
        const service = server.autoallocService();
        return replyDurable(server, connection, reqId, async () => {
          await service.dryRun(request.params);
          return null;
        });
      }
      case 'alloc-list':
        return reply(connection, reqId, server.autoallocIfAny?.listQueues() ?? []);
      case 'alloc-info':
        return reply(
          connection,
          reqId,
          server.autoallocService().queueAllocations(request.queueId),
        );
      case 'alloc-allocation':
        return reply(connection, reqId, server.autoallocService().allocation(request.allocationId));
      case 'alloc-remove': {
        const service = server.autoallocService();
        return replyDurable(server, connection, reqId, async () => {
          await service.removeQueue(request.queueId, request.force);
          return null;
        });
      }
      case 'alloc-pause':
      case 'alloc-resume':
        return replyDurable(server, connection, reqId, () => {
          server
            .autoallocService()
            .setQueueState(request.queueId, request.op === 'alloc-pause' ? 'paused' : 'active');
          return null;
        });
      case 'journal-stream':
        return streamEvents(server, connection, request);
      case 'journal-flush':
        return replyDurable(server, connection, reqId, () => null);
      case 'journal-prune':
        return replyDurable(server, connection, reqId, () => {
          server.pruneJournal();
          return null;
        });
    }
  } catch (e) {
    fail(connection, reqId, e);
  }
}
