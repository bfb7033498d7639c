/**
 * `hq server start`: refuse when a server already answers in the server directory, create the
 * next numbered run directory, write the access file, listen, and point `hq-current` at it.
 * The access file is written as soon as the ports are bound: clients may call right after.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { HqError } from '../common/errors.js';
import { logger } from '../common/log.js';
import {
  ACCESS_FILE,
  createInstanceDir,
  generateSecretKey,
  generateServerUid,
  instanceDir,
  linkCurrent,
  readAccessFile,
  readFullAccessFile,
  unlinkCurrent,
  writePrivateJson,
  type AccessRecord,
} from '../common/server-dir.js';
import { VERSION } from '../common/version.js';
import { connect } from '../transport/connection.js';
import { HqServer } from './server.js';
import { openJournal } from './journal/restore.js';

const log = logger('hq::server');

export interface ServerStartOptions {
  serverDir: string;
  host: string | null;
  clientPort: number | null;
  workerPort: number | null;
  idleTimeoutMs: number | null;
  accessFile: string | null;
  journal: string | null;
  journalFlushPeriodMs: number;
}

/** True when the access file in `serverDir` leads to a server that completes a handshake. */
async function isServerOnline(serverDir: string): Promise<boolean> {
  const file = path.join(instanceDir(serverDir), ACCESS_FILE);
  let access;
  try {
    access = readAccessFile(file);
  } catch {
    return false;
  }
  if (access.client === null) {
    return false;
  }
  try {
    const c = await connect(
      access.client.host,
      access.client.port,
      'client',
      Buffer.from(access.client.secret_key, 'hex'),
      2000,
    );
    c.close();
    return true;
  } catch {
    return false;
  }
}

export interface StartedServer {
  server: HqServer;
  runDir: string;
  /** Removes `hq-current`; call once the server has stopped. */
  cleanup: () => void;
}

export async function startServer(options: ServerStartOptions): Promise<StartedServer> {
  const { serverDir } = options;
  if (await isServerOnline(serverDir)) {
    throw new HqError(
      'HQ_SERVER_RUNNING',
      `Server at ${serverDir} is already online, please stop it first using \`hq server stop --server-dir ${serverDir}\``,
    );
  }
  log.info('No online server found, starting a new server');

  let record: AccessRecord;
  if (options.accessFile !== null) {
    record = readFullAccessFile(path.resolve(options.accessFile));
  } else {
    const host = options.host ?? os.hostname();
    record = {
      version: VERSION,
      server_uid: generateServerUid(),
      client: { host, port: options.clientPort ?? 0, secret_key: generateSecretKey() },
      worker: { host, port: options.workerPort ?? 0, secret_key: generateSecretKey() },
    };
  }

  // The journal is replayed before any socket is bound: clients only ever see restored state.
  const journalPath = options.journal === null ? null : path.resolve(options.journal);
  const restored =
    journalPath === null ? null : openJournal(journalPath, options.journalFlushPeriodMs);
  if (restored?.state.serverUid != null) {
    record.server_uid = restored.state.serverUid;
  }
  const server = new HqServer(
    {
      serverUid: record.server_uid,
      clientHost: record.client.host,
      workerHost: record.worker.host,
      clientPort: record.client.port,
      workerPort: record.worker.port,
      clientKey: Buffer.from(record.client.secret_key, 'hex'),
      workerKey: Buffer.from(record.worker.secret_key, 'hex'),
      idleTimeoutMs: options.idleTimeoutMs,
      journalPath,
    },
    restored?.state,
    restored?.writer ?? null,
  );
  // `--host` is only the name advertised to clients and workers; listen on every interface.
  const ports = await server.start('0.0.0.0');
  record.client.port = ports.clientPort;
  record.worker.port = ports.workerPort;

  const runDir = createInstanceDir(serverDir);
  server.instanceDir = runDir;
  if (restored?.replayed === true) {
    server.resumeRestored();
  }
  const accessPath = path.join(runDir, ACCESS_FILE);
  log.info(`Saving access file as '${accessPath}'`);
  writePrivateJson(accessPath, record);
  linkCurrent(serverDir, runDir);
  return { server, runDir, cleanup: () => unlinkCurrent(serverDir, runDir) };
}
