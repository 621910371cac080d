import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, errorMessage } from '../errors.js';
import { DEFAULT_MAX_WORKER_MEMORY_BYTES, defaultTaskMemoryBytes, heapLimitMbFor, machineMemoryBytes } from '../executor/memory-limits.js';
import { SETTINGS, type KilnConfig } from './schema.js';

export type { KilnConfig } from './schema.js';

/** Config-file spellings without the unit suffix, as the issues and Airflow users write them. */
const ALIASES: Record<string, keyof KilnConfig> = { drain: 'drainMs', takeoverAfter: 'takeoverAfterMs', retention: 'retentionMs' };

/** Where `--metrics` without an address listens: this machine only (9464: the port OpenTelemetry's Prometheus exporter uses). */
export const DEFAULT_METRICS_HOST = '127.0.0.1';
/** The scheduler's shutdown drain and takeover time when neither flag nor config sets them. */
export const DEFAULT_DRAIN_MS = 5_000;
export const DEFAULT_TAKEOVER_AFTER_MS = 30_000;
export const DEFAULT_METRICS_PORT = 9464;

/** Where `kiln webserver` listens by default: this machine only. */
export const DEFAULT_WEBSERVER_HOST = '127.0.0.1';
export const DEFAULT_WEBSERVER_PORT = 8080;

const CONFIG_FILES = ['kiln.config.ts', 'kiln.config.mts', 'kiln.config.js', 'kiln.config.mjs', 'kiln.config.json'];

export interface LoadConfigOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags: override the environment, which overrides the file. */
  flags?: Partial<Record<keyof KilnConfig, unknown>>;
  /** Read this file instead of looking for kiln.config.* in cwd. */
  configFile?: string;
}

/**
 * Builds the one KilnConfig: defaults < kiln.config.{ts,js,json} < KILN_* environment
 * variables < flags. Every value is checked once here, with an error naming the setting
 * and where it came from; the rest of kiln only sees filled-in, valid settings.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<KilnConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const fromFile = await readConfigFile(cwd, options.configFile);

  const raw: Partial<Record<keyof KilnConfig, { value: unknown; source: string }>> = {};
  for (const [fileKey, value] of Object.entries(fromFile.values)) {
    const key = ALIASES[fileKey] ?? fileKey;
    if (!(key in SETTINGS)) throw new ConfigError(`${fromFile.file}: unknown setting '${fileKey}' (known: ${Object.keys(SETTINGS).join(', ')})`);
    if (value !== undefined) raw[key as keyof KilnConfig] = { value, source: `${fromFile.file}: '${fileKey}'` };
  }
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const v = env[setting.env];
    if (v !== undefined && v !== '') raw[key as keyof KilnConfig] = { value: v, source: setting.env };
  }
  for (const [key, value] of Object.entries(options.flags ?? {})) {
    if (value !== undefined) raw[key as keyof KilnConfig] = { value, source: `--${kebab(key)}` };
  }

  const homeDir = resolve(cwd, read('homeDir', raw) ?? '.kiln');
  const parallelism = read('parallelism', raw) ?? Math.max(4, cpus().length * 4);
  const maxWorkerMemoryBytes = read('maxWorkerMemoryBytes', raw) ?? DEFAULT_MAX_WORKER_MEMORY_BYTES;
  const maxTaskMemoryBytes = read('maxTaskMemoryBytes', raw) ?? defaultTaskMemoryBytes({ totalMemoryBytes: machineMemoryBytes(), parallelism, maxWorkerMemoryBytes });
  const config: KilnConfig = {
    dagsFolder: resolve(cwd, read('dagsFolder', raw) ?? 'dags'),
    databaseUrl: read('databaseUrl', raw) ?? `sqlite:${join(homeDir, 'kiln.db')}`,
    executor: read('executor', raw) ?? 'process',
    parallelism,
    defaultIsolation: read('defaultIsolation', raw) ?? 'process',
    homeDir,
    logsFolder: resolve(cwd, read('logsFolder', raw) ?? join(homeDir, 'logs')),
    heartbeatIntervalMs: read('heartbeatIntervalMs', raw) ?? 5_000,
    zombieTimeoutMs: read('zombieTimeoutMs', raw) ?? 60_000,
    queuedTimeoutMs: read('queuedTimeoutMs', raw) ?? 600_000,
    schedulerIntervalMs: read('schedulerIntervalMs', raw) ?? 1_000,
    dagDirListIntervalMs: read('dagDirListIntervalMs', raw) ?? 30_000,
    parseTimeoutMs: read('parseTimeoutMs', raw) ?? 30_000,
    maxTasksPerWorker: read('maxTasksPerWorker', raw) ?? 10_000,
    maxWorkerMemoryBytes,
    maxTaskMemoryBytes,
    workerHeapLimitMb: read('workerHeapLimitMb', raw) ?? heapLimitMbFor(maxTaskMemoryBytes),
    killGraceMs: read('killGraceMs', raw) ?? 5_000,
    drainMs: read('drainMs', raw) ?? 5_000,
    takeoverAfterMs: read('takeoverAfterMs', raw) ?? 30_000,
    retentionMs: read('retentionMs', raw) ?? null,
    webserverHost: read('webserverHost', raw) ?? DEFAULT_WEBSERVER_HOST,
    webserverPort: read('webserverPort', raw) ?? DEFAULT_WEBSERVER_PORT,
    webserverAuth: read('webserverAuth', raw) ?? null,
    metricsHost: read('metricsHost', raw) ?? DEFAULT_METRICS_HOST,
    metricsPort: read('metricsPort', raw) ?? null,
    metricsTaskLabels: read('metricsTaskLabels', raw) ?? false,
    logFormat: read('logFormat', raw) ?? 'text',
    otlpEndpoint: read('otlpEndpoint', raw) ?? null,
    redisUrl: read('redisUrl', raw) ?? 'redis://127.0.0.1:6379',
  };
  // A relative SQLite path is relative to the project folder, not to wherever kiln runs later.
  const sqlitePath = /^(sqlite|file):/.test(config.databaseUrl) ? config.databaseUrl.replace(/^(sqlite|file):(\/\/)?/, '') : /^[a-z]+:\/\//i.test(config.databaseUrl) ? null : config.databaseUrl;
  if (sqlitePath !== null && sqlitePath !== ':memory:' && !isAbsolute(sqlitePath)) config.databaseUrl = `sqlite:${resolve(cwd, sqlitePath)}`;
  return config;
}

function read<K extends keyof KilnConfig>(key: K, raw: Partial<Record<keyof KilnConfig, { value: unknown; source: string }>>): KilnConfig[K] | undefined {
  const entry = raw[key];
  if (!entry) return undefined;
  try {
    return SETTINGS[key].read(entry.value, entry.source);
  } catch (err) {
    throw new ConfigError(errorMessage(err));
  }
}

async function readConfigFile(cwd: string, explicit?: string): Promise<{ file: string; values: Record<string, unknown> }> {
  const file = explicit ? resolve(cwd, explicit) : CONFIG_FILES.map((f) => join(cwd, f)).find((f) => existsSync(f));
  if (!file) return { file: '', values: {} };
  if (!existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  let values: unknown;
  try {
    if (file.endsWith('.json')) {
      values = JSON.parse(readFileSync(file, 'utf8'));
    } else {
      if (/\.m?ts$/.test(file)) {
        const { registerDagLoader } = await import('../../workers/register-loader.js');
        registerDagLoader();
      }
      values = ((await import(pathToFileURL(file).href)) as { default?: unknown }).default;
    }
  } catch (err) {
    throw new ConfigError(`${file}: cannot be read: ${errorMessage(err)}`);
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new ConfigError(`${file}: must ${file.endsWith('.json') ? 'hold' : 'default-export'} an object of settings`);
  return { file, values: values as Record<string, unknown> };
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
