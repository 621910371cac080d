/**
 * The DAG parser's worker thread: imports DAG files (running user code at import time,
 * which is why this never happens on the scheduler's thread) and answers with their
 * serialized form or the import error.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { contentVersion, serializeDag } from '../src/dag/serialize.js';
import { errorMessage } from '../src/errors.js';
import { keepSource } from './dag-sources.js';
import { importDagFile } from './load-dag.js';
import type { ParseRequest, ParseResponse } from './parse-protocol.js';

const port = parentPort!;

async function parse(file: string, sourcesDir: string | undefined): Promise<ParseResponse> {
  let version: string | null = null;
  try {
    const source = readFileSync(file);
    version = contentVersion(source);
    // The very bytes that were hashed: a run of this version imports them, whatever the file says later.
    if (sourcesDir !== undefined) keepSource(sourcesDir, file, version, source);
    const d = await importDagFile(file, version);
    return { __kiln: 1, type: 'parsed', file, version, dag: serializeDag(d) };
  } catch (err) {
    return { __kiln: 1, type: 'parse-error', file, version, error: errorMessage(err) };
  }
}

port.on('message', (msg: ParseRequest) => {
  if (msg?.__kiln !== 1 || msg.type !== 'parse') return;
  void parse(msg.file, msg.sourcesDir).then((res) => port.postMessage(res));
});
// A DAG file that leaves a timer or a rejected promise behind must not take the parser down.
process.on('unhandledRejection', () => {});
