import type { SerializedDag } from '../src/dag/types.js';

/** Messages between the DAG parser (src/parsing) and its worker thread (parse-entry.ts). */
/** `sourcesDir`: where to keep a snapshot of each version's source (see dag-sources.ts). */
export type ParseRequest = { __kiln: 1; type: 'parse'; file: string; sourcesDir?: string };
export type ParseResponse =
  | { __kiln: 1; type: 'parsed'; file: string; version: string; dag: SerializedDag }
  | { __kiln: 1; type: 'parse-error'; file: string; version: string | null; error: string };
