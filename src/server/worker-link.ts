/**
 * A worker's connection: it must register (matching protocol and version) within the time
 * limit, then its messages are dispatched to the server. A protocol violation closes the
 * connection, which the server sees as the worker being lost.
 */
import { HqError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import type { Connection } from '../transport/connection.js';
import {
  PROTOCOL_VERSION,
  type ServerToWorker,
  type WorkerLostReason,
} from '../transport/messages.js';
import { parseWorkerMessage, peerText } from '../transport/validate.js';
import type { HqServer } from './server.js';
import type { WorkerRecord } from './workers.js';

const log = logger('hq::server');

const REGISTER_TIMEOUT_MS = 15_000;

export function onWorkerConnection(server: HqServer, connection: Connection): void {
  const timer = setTimeout(() => {
    log.warn('worker did not register in time; closing its connection');
    connection.close('registration timeout');
  }, REGISTER_TIMEOUT_MS);
  let worker: WorkerRecord | null = null;
  connection.onClose((reason) => {
    clearTimeout(timer);
    if (worker !== null) {
      const w = worker;
      const lostReason: WorkerLostReason = w.stopRequested
        ? 'stopped'
        : (w.announcedReason ?? 'connection-lost');
      log.debug(`worker ${w.id} connection closed (${reason})`);
      server.workerLost(w, lostReason);
    }
  });
  connection.listen((raw) => {
    try {
      const message = parseWorkerMessage(raw);
      if (worker === null) {
        if (message.op !== 'register') {
          throw new HqError('HQ_PROTOCOL', 'the first message of a worker must be register');
        }
        if (message.protocol !== PROTOCOL_VERSION || message.version !== VERSION) {
          throw new HqError(
            'HQ_PROTOCOL',
            `worker version ${peerText(message.version)} does not match server version ${VERSION}`,
          );
        }
        clearTimeout(timer);
        if (server.stopped) {
          connection.close('server stopping');
          return;
        }
        worker = server.registerWorker(connection, message.configuration);
        return;
      }
      worker.lastSeen = Date.now();
      switch (message.op) {
        case 'register':
          throw new HqError('HQ_PROTOCOL', 'worker registered twice');
        case 'heartbeat':
          connection.send({ op: 'heartbeat' } satisfies ServerToWorker);
          return;
        case 'stopping':
          worker.announcedReason = message.reason;
          return;
        case 'task-updates':
          server.onTaskUpdates(worker, message.updates);
          return;
        case 'notify':
          server.onNotify(worker.id, message.jobId, message.taskId, message.message);
          return;
        case 'overview':
          server.emit({
            type: 'worker-overview',
            id: worker.id,
            hwState: message.hwState,
            ...(message.tasks === undefined ? {} : { tasks: message.tasks }),
          });
          return;
      }
    } catch (e) {
      log.warn(`closing worker connection: ${errorMessage(e)}`);
      connection.close('protocol error');
    }
  });
}
