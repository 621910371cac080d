import { ISOLATIONS, type Isolation } from '../dag/types.js';
import { parseBytes } from '../dag/bytes.js';
import { parseDurationMs } from '../dag/duration.js';
import { ConfigError } from '../errors.js';

/** kiln's settings after defaults are filled in: what every other module reads. */
export interface KilnConfig {
  /** Where DAG files live. */
  dagsFolder: string;
  /** `sqlite:<path>`, a file path, or `postgres://...`. */
  databaseUrl: string;
  /** Built-in executor name (thread | process | spawn | local | bullmq) or a module path. */
  executor: string;
  /** Tasks running at once in one executor. */
  parallelism: number;
  /** Isolation for tasks that name none. */
  defaultIsolation: Isolation;
  /** kiln's own state folder: SQLite file, logs. */
  homeDir: string;
  logsFolder: string;
  heartbeatIntervalMs: number;
  /** A running task with no heartbeat for this long is a zombie. */
  zombieTimeoutMs: number;
  /** A task queued for this long without starting is queued again. */
  queuedTimeoutMs: number;
  /** The scheduler loop interval (time-based work only; readiness is event-driven). */
  schedulerIntervalMs: number;
  /** How often the scheduler re-reads the DAG folder. */
  dagDirListIntervalMs: number;
  /** Time limit for importing one batch of DAG files. */
  parseTimeoutMs: number;
  maxTasksPerWorker: number;
  /** Recycle a worker (after its try) whose memory passed this. */
  maxWorkerMemoryBytes: number;
  /**
   * Hard memory limit of one try, enforced while it runs: a process tree past it is killed,
   * a thread is bounded by its heap limit and by kiln's own RSS. Default: derived from
   * maxWorkerMemoryBytes, the machine's memory and parallelism (see config/memory.ts).
   */
  maxTaskMemoryBytes: number;
  /** V8 heap limit of each worker (MB). Default: maxTaskMemoryBytes in MB. */
  workerHeapLimitMb: number;
  killGraceMs: number;
  /** At scheduler shutdown, how long running tries may finish before they are stopped. */
  drainMs: number;
  /** A scheduler silent this long is dead; its runs are taken over. */
  takeoverAfterMs: number;
  /** The scheduler deletes finished runs older than this (null: keep everything). */
  retentionMs: number | null;
  /** Interface `kiln webserver` (and `kiln scheduler --webserver`) listens on. */
  webserverHost: string;
  /** Port of the web UI and HTTP API (0: any free port). */
  webserverPort: number;
  /**
   * Who may use the web UI and API: tokens with a role. null: a token is generated (kept in
   * `<homeDir>/webserver-token`) and the server may only bind to loopback.
   */
  webserverAuth: WebserverAuth | null;
  /** Interface the scheduler's /metrics endpoint listens on (with metricsPort or `--metrics`). */
  metricsHost: string;
  /** Port of the scheduler's /metrics endpoint; null: no endpoint unless `--metrics` asks for one. */
  metricsPort: number | null;
  /** Add task_id to the per-try histograms (more series: one per task). */
  metricsTaskLabels: boolean;
  /** Scheduler log lines: `text` (a human line) or `json` (one pino object per line). */
  logFormat: LogFormat;
  /** OTLP/HTTP endpoint the scheduler exports traces to (a run a trace, a try a span); null: no traces. */
  otlpEndpoint: string | null;
  /** Redis of the `bullmq` executor and of `kiln worker` hosts (`redis://host:port/db`, `rediss://` for TLS). */
  redisUrl: string;
}

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** One entry per setting: its environment variable and how to read a raw value. */
type Reader<T> = (raw: unknown, name: string) => T;

const str: Reader<string> = (raw, name) => {
  if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(`${name} must be a non-empty string, got ${JSON.stringify(raw)}`);
  return raw;
};
const positiveInt: Reader<number> = (raw, name) => {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ConfigError(`${name} must be an integer >= 1, got ${JSON.stringify(raw)}`);
  return n;
};
const duration: Reader<number> = (raw, name) => {
  const ms = parseDurationMs(typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw);
  if (ms === undefined || ms <= 0) throw new ConfigError(`${name} must be milliseconds or a duration like '30s', got ${JSON.stringify(raw)}`);
  return ms;
};
const bytes: Reader<number> = (raw, name) => {
  const n = parseBytes(raw);
  if (n === undefined || n < 1) throw new ConfigError(`${name} must be a number of bytes or a size like '512MiB' or '2GB', got ${JSON.stringify(raw)}`);
  return n;
};
/** A duration where 0 is allowed (drain: stop at once). */
const durationOrZero: Reader<number> = (raw, name) => {
  const ms = parseDurationMs(typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw);
  if (ms === undefined) throw new ConfigError(`${name} must be milliseconds or a duration like '30s', got ${JSON.stringify(raw)}`);
  return ms;
};
/** A duration, or off: null, false, 'off', 'never'. */
const optionalDuration: Reader<number | null> = (raw, name) => {
  if (raw === null || raw === false || raw === 'off' || raw === 'never') return null;
  try {
    return duration(raw, name);
  } catch {
    throw new ConfigError(`${name} must be a duration like '30d' or 'off', got ${JSON.stringify(raw)}`);
  }
};
/** A TCP port (0: any free port), or off: null, false, 'off'. */
const optionalPort: Reader<number | null> = (raw, name) => {
  if (raw === null || raw === false || raw === 'off') return null;
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number (0-65535) or 'off', got ${JSON.stringify(raw)}`);
  return n;
};
const boolean: Reader<boolean> = (raw, name) => {
  if (raw === true || raw === 'true' || raw === '1') return true;
  if (raw === false || raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
};
/** An http(s) URL, or off: null, false, 'off'. */
const optionalUrl: Reader<string | null> = (raw, name) => {
  if (raw === null || raw === false || raw === 'off') return null;
  if (typeof raw !== 'string' || !/^https?:\/\/[^/\s]+/.test(raw)) throw new ConfigError(`${name} must be an http(s) URL like 'http://localhost:4318' or 'off', got ${JSON.stringify(raw)}`);
  return raw;
};
const logFormat: Reader<LogFormat> = (raw, name) => {
  if (!(LOG_FORMATS as readonly unknown[]).includes(raw)) throw new ConfigError(`${name} must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as LogFormat;
};
export const WEBSERVER_ROLES = ['viewer', 'admin'] as const;
export type WebserverRole = (typeof WEBSERVER_ROLES)[number];
export interface WebserverAuth {
  /** `viewer`: reads only; `admin`: may also trigger, clear, mark, pause and change pools. */
  tokens: Array<{ token: string; role: WebserverRole; name: string | null }>;
}

/** `{ tokens: [{ token, role, name? }] }`, from the config file or as JSON in the environment. */
const webserverAuth: Reader<WebserverAuth | null> = (raw, name) => {
  if (raw === null || raw === false || raw === 'off') return null;
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${name} must be JSON like {"tokens":[{"token":"...","role":"admin"}]}, got ${JSON.stringify(raw)}`);
    }
  }
  const tokens = (value as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) throw new ConfigError(`${name} must have a non-empty 'tokens' list of { token, role: 'viewer' | 'admin', name? }`);
  return {
    tokens: tokens.map((t: { token?: unknown; role?: unknown; name?: unknown }, i) => {
      if (typeof t?.token !== 'string' || t.token.length < 16) throw new ConfigError(`${name}: tokens[${i}].token must be a string of at least 16 characters`);
      if (!(WEBSERVER_ROLES as readonly unknown[]).includes(t.role)) throw new ConfigError(`${name}: tokens[${i}].role must be one of ${WEBSERVER_ROLES.join(', ')}, got ${JSON.stringify(t.role)}`);
      if (t.name !== undefined && typeof t.name !== 'string') throw new ConfigError(`${name}: tokens[${i}].name must be a string`);
      return { token: t.token, role: t.role as WebserverRole, name: (t.name as string | undefined) ?? null };
    }),
  };
};

/** A TCP port; 0: any free port. */
const tcpPort: Reader<number> = (raw, name) => {
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`);
  return n;
};
const redisUrl: Reader<string> = (raw, name) => {
  if (typeof raw !== 'string' || !/^rediss?:\/\/[^\s]*$/.test(raw)) throw new ConfigError(`${name} must be a Redis URL like 'redis://127.0.0.1:6379', got ${JSON.stringify(raw)}`);
  return raw;
};
const isolation: Reader<Isolation> = (raw, name) => {
  if (!(ISOLATIONS as readonly unknown[]).includes(raw)) throw new ConfigError(`${name} must be one of ${ISOLATIONS.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as Isolation;
};

interface Setting<K extends keyof KilnConfig> {
  env: string;
  read: Reader<KilnConfig[K]>;
}

export const SETTINGS: { [K in keyof KilnConfig]: Setting<K> } = {
  dagsFolder: { env: 'KILN_DAGS_FOLDER', read: str },
  databaseUrl: { env: 'KILN_DATABASE_URL', read: str },
  executor: { env: 'KILN_EXECUTOR', read: str },
  parallelism: { env: 'KILN_PARALLELISM', read: positiveInt },
  defaultIsolation: { env: 'KILN_DEFAULT_ISOLATION', read: isolation },
  homeDir: { env: 'KILN_HOME', read: str },
  logsFolder: { env: 'KILN_LOGS_FOLDER', read: str },
  heartbeatIntervalMs: { env: 'KILN_HEARTBEAT_INTERVAL', read: duration },
  zombieTimeoutMs: { env: 'KILN_ZOMBIE_TIMEOUT', read: duration },
  queuedTimeoutMs: { env: 'KILN_QUEUED_TIMEOUT', read: duration },
  schedulerIntervalMs: { env: 'KILN_SCHEDULER_INTERVAL', read: duration },
  dagDirListIntervalMs: { env: 'KILN_DAG_DIR_LIST_INTERVAL', read: duration },
  parseTimeoutMs: { env: 'KILN_PARSE_TIMEOUT', read: duration },
  maxTasksPerWorker: { env: 'KILN_MAX_TASKS_PER_WORKER', read: positiveInt },
  maxWorkerMemoryBytes: { env: 'KILN_MAX_WORKER_MEMORY_BYTES', read: bytes },
  maxTaskMemoryBytes: { env: 'KILN_MAX_TASK_MEMORY_BYTES', read: bytes },
  workerHeapLimitMb: { env: 'KILN_WORKER_HEAP_LIMIT_MB', read: positiveInt },
  killGraceMs: { env: 'KILN_KILL_GRACE', read: duration },
  drainMs: { env: 'KILN_DRAIN', read: durationOrZero },
  takeoverAfterMs: { env: 'KILN_TAKEOVER_AFTER', read: duration },
  retentionMs: { env: 'KILN_RETENTION', read: optionalDuration },
  webserverHost: { env: 'KILN_WEBSERVER_HOST', read: str },
  webserverPort: { env: 'KILN_WEBSERVER_PORT', read: tcpPort },
  webserverAuth: { env: 'KILN_WEBSERVER_AUTH', read: webserverAuth },
  metricsHost: { env: 'KILN_METRICS_HOST', read: str },
  metricsPort: { env: 'KILN_METRICS_PORT', read: optionalPort },
  metricsTaskLabels: { env: 'KILN_METRICS_TASK_LABELS', read: boolean },
  logFormat: { env: 'KILN_LOG_FORMAT', read: logFormat },
  otlpEndpoint: { env: 'KILN_OTLP_ENDPOINT', read: optionalUrl },
  redisUrl: { env: 'KILN_REDIS_URL', read: redisUrl },
};
