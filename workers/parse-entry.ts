/**
 * The DAG parser's worker thread: imports DAG files (running user code at import time,
 * which is why this never happens on the scheduler's thread) and answers with their
 * serialized form or the import error.
 */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { checkParamsSchema } from '../src/dag/params-schema.js';
import { contentVersion, serializeDag } from '../src/dag/serialize.js';
import { errorMessage } from '../src/errors.js';
import { importDagFile } from './load-dag.js';
import type { ParseRequest, ParseResponse } from './parse-protocol.js';

const port = parentPort!;

async function parse(file: string): Promise<ParseResponse> {
  let version: string | null = null;
  try {
    version = contentVersion(readFileSync(file));
    const d = await importDagFile(file, version);
    const dag = serializeDag(d);
    checkParamsSchema(dag);
    return { __kiln: 1, type: 'parsed', file, version, dag };
  } catch (err) {
    return { __kiln: 1, type: 'parse-error', file, version, error: errorMessage(err) };
  }
}

port.on('message', (msg: ParseRequest) => {
  if (msg?.__kiln !== 1 || msg.type !== 'parse') return;
  void parse(msg.file).then((res) => port.postMessage(res));
});
// A DAG file that leaves a timer or a rejected promise behind must not take the parser down.
process.on('unhandledRejection', () => {});
