import { Worker } from 'node:worker_threads';
import type { SerializedDag } from '../dag/types.js';
import { scheduleError } from '../scheduler/schedule.js';
import { checkParamsSchema } from '../scheduler/params-schema.js';
import { errorMessage } from '../errors.js';
import type { ParseRequest, ParseResponse } from '../../workers/parse-protocol.js';

export interface ParsedFile {
  file: string;
  version: string | null;
  dag?: SerializedDag;
  error?: string;
}

const ENTRY = new URL('../../workers/parse-entry.js', import.meta.url);

/**
 * Imports DAG files in a worker thread, one file at a time, each within `timeoutMs`. A file
 * that hangs at import is reported as an import error and the worker is replaced, so one
 * bad file never stops the others (or the scheduler) from being parsed.
 */
export class DagParser {
  private worker: Worker | null = null;

  constructor(
    private readonly timeoutMs: number,
    /** Where each parsed version's source is kept, so runs import the code they started with; none: not kept. */
    private readonly sourcesDir?: string,
  ) {}

  async parseFiles(files: readonly string[]): Promise<ParsedFile[]> {
    const results: ParsedFile[] = [];
    for (const file of files) results.push(await this.parseOne(file));
    return markDuplicateIds(results);
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private parseOne(file: string): Promise<ParsedFile> {
    const worker = (this.worker ??= this.startWorker());
    return new Promise<ParsedFile>((resolve) => {
      const done = (result: ParsedFile): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        resolve(result);
      };
      const onMessage = (msg: ParseResponse): void => {
        if (msg?.__kiln !== 1 || msg.file !== file) return;
        if (msg.type === 'parse-error') return done({ file, version: msg.version, error: msg.error });
        // dag() cannot check a cron string (dag/ takes no libraries): every parse does it here.
        const badSchedule = scheduleError(msg.dag.schedule);
        if (badSchedule !== null) return done({ file, version: msg.version, error: `${file}: DAG '${msg.dag.dagId}': ${badSchedule}` });
        // Likewise the params schema (ajv stays out of the workers).
        try {
          checkParamsSchema(msg.dag);
        } catch (err) {
          return done({ file, version: msg.version, error: `${file}: ${errorMessage(err)}` });
        }
        done({ file, version: msg.version, dag: msg.dag });
      };
      const retire = (): void => {
        if (this.worker === worker) this.worker = null;
        void worker.terminate();
      };
      const onError = (err: Error): void => {
        retire();
        done({ file, version: null, error: `${file}: the parser crashed while importing it: ${err.message}` });
      };
      const onExit = (code: number): void => {
        retire();
        done({ file, version: null, error: `${file}: the file ended the parser at import (exit code ${code})` });
      };
      const timer = setTimeout(() => {
        retire();
        done({ file, version: null, error: `${file}: import took longer than ${this.timeoutMs} ms (parse timeout); does it run work at import time?` });
      }, this.timeoutMs);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      const request: ParseRequest = this.sourcesDir === undefined ? { __kiln: 1, type: 'parse', file } : { __kiln: 1, type: 'parse', file, sourcesDir: this.sourcesDir };
      worker.postMessage(request);
    });
  }

  private startWorker(): Worker {
    // Parsing must not keep the process alive on its own; stdout of DAG files at import is shown.
    const w = new Worker(ENTRY, { env: process.env });
    w.unref();
    return w;
  }
}

/** Two files defining the same DAG id: the later file (by path) gets an import error. */
function markDuplicateIds(results: ParsedFile[]): ParsedFile[] {
  const seen = new Map<string, string>();
  return results.map((r) => {
    if (!r.dag) return r;
    const first = seen.get(r.dag.dagId);
    if (first) return { file: r.file, version: r.version, error: `${r.file}: DAG id '${r.dag.dagId}' is already defined in ${first}` };
    seen.set(r.dag.dagId, r.file);
    return r;
  });
}
