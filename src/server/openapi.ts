/**
 * The OpenAPI 3.1 document served at /api/v1/openapi.json, written by hand from one table
 * of operations. A test checks that every route the server has is in it, and nothing more.
 */
interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  /** Hono's path syntax under /api/v1 (`:name` parameters). */
  path: string;
  summary: string;
  query?: Record<string, string>;
  body?: { description: string; schema: Record<string, unknown> };
  /** Response description for the success status. */
  returns: string;
  status?: number;
  contentType?: string;
}

const str = { type: 'string' };
const bool = { type: 'boolean' };
const TI = '/dags/:dagId/runs/:runId/tasks/:taskId';
const TRY = `${TI}/tries/:tryNumber`;
const MAP_INDEX = 'the task instance: a mapped task\'s map index (0..N-1); absent or -1 for a task that is not mapped (a mapped task without one answers 400 listing its map indexes)';

export const OPERATIONS: Operation[] = [
  { method: 'get', path: '/dags', summary: 'DAGs with their latest runs, next run and paused flag; import errors beside', query: { lastRuns: 'how many latest runs per DAG (default 10)' }, returns: 'ApiDagList' },
  { method: 'get', path: '/import-errors', summary: 'DAG files that failed to import', returns: '{ importErrors }' },
  { method: 'get', path: '/dags/:dagId', summary: 'One DAG: tasks, edges, params and params schema', returns: 'ApiDag' },
  { method: 'post', path: '/dags/:dagId/pause', summary: 'Pause a DAG (no scheduled runs; queued runs wait)', body: { description: 'empty object', schema: { type: 'object' } }, returns: 'ApiDag' },
  { method: 'post', path: '/dags/:dagId/unpause', summary: 'Unpause a DAG', body: { description: 'empty object', schema: { type: 'object' } }, returns: 'ApiDag' },
  {
    method: 'get', path: '/dags/:dagId/grid', summary: "Runs x tasks in one compact response, newest run first; a mapped task's instances are one cell per run with their count and counts by state (ApiGridMappedCell)",
    query: { limit: 'runs per page, 1-500 (default 25)', before: 'the nextCursor of the previous page' }, returns: 'ApiGrid',
  },
  { method: 'get', path: '/runs', summary: 'Runs of every DAG, newest first', query: { dagId: 'only this DAG', state: 'queued | running | success | failed', limit: '1-1000 (default 100)' }, returns: '{ runs: ApiRun[] }' },
  { method: 'get', path: '/dags/:dagId/runs', summary: "A DAG's runs, newest first", query: { state: 'queued | running | success | failed', limit: '1-1000 (default 100)' }, returns: '{ runs: ApiRun[] }' },
  {
    method: 'post', path: '/dags/:dagId/runs', summary: 'Trigger a manual run (params checked against the DAG schema first)', status: 201,
    body: { description: 'the run to queue', schema: { type: 'object', properties: { params: { type: 'object' }, runId: str, logicalDate: { description: 'ISO 8601 or epoch ms' } } } },
    returns: '{ run: ApiRun, paused }',
  },
  { method: 'get', path: '/dags/:dagId/runs/:runId', summary: 'One run with its task instances and their tries', returns: 'ApiRunDetail' },
  {
    method: 'post', path: '/dags/:dagId/runs/:runId/clear', summary: 'Clear task instances so they run again; dryRun lists what would be cleared',
    body: {
      description: 'what to clear: every task instance of the run, a task (all its instances), or one instance (taskId and mapIndex); downstream: also every instance of the tasks after it',
      schema: { type: 'object', properties: { taskId: str, mapIndex: { type: 'integer', minimum: -1 }, downstream: bool, dryRun: bool } },
    },
    returns: 'ApiClearResult',
  },
  { method: 'get', path: TI, summary: 'One task instance with its tries (the latest in full; earlier ones keep only their logs)', query: { mapIndex: MAP_INDEX }, returns: 'ApiTaskInstance' },
  {
    method: 'get', path: `${TI}/instances`, summary: "A page of a task's instances in a run, in map-index order, with the counts of all of them by state (a mapped task's list)",
    query: { offset: 'skip this many (default 0)', limit: '1-1000 (default 100)', state: 'only instances in these states (comma-separated)' }, returns: 'ApiTaskInstancePage',
  },
  {
    method: 'get', path: `${TI}/instances/by-state`, summary: "Which of a task's instances are in which state (map-index lists), and the change feed's position just before they were read",
    returns: 'ApiInstanceStates',
  },
  { method: 'get', path: '/dags/:dagId/tasks/:taskId/history', summary: "One task instance across the DAG's latest runs (state, duration, peak RSS, CPU, exit code), newest first", query: { limit: '1-500 (default 30)', mapIndex: 'which map index of a mapped task (default -1)' }, returns: 'ApiTaskHistory' },
  {
    method: 'get', path: `${TI}/xcom`, summary: "The XCom value (null if none): one instance's with mapIndex; without it the task's result as a downstream reads it (a mapped task's successful instances' values, in map-index order)",
    query: { mapIndex: 'one instance of a mapped task (default: the task as a whole)' }, returns: 'ApiXcom',
  },
  {
    method: 'post', path: `${TI}/mark`, summary: 'Mark a task instance success or failed (never its downstream); dryRun lists what would change', query: { mapIndex: MAP_INDEX },
    body: { description: 'the new state', schema: { type: 'object', required: ['state'], properties: { state: { enum: ['success', 'failed'] }, dryRun: bool } } }, returns: 'ApiMarkResult',
  },
  { method: 'get', path: `${TRY}/log`, summary: "A try's log: the tail, or a chunk from a byte offset", query: { mapIndex: MAP_INDEX, offset: 'byte offset (default: the tail)', maxBytes: '1-1048576 (default 65536)' }, returns: 'ApiLogChunk' },
  { method: 'get', path: `${TRY}/log/download`, summary: "A try's whole log file", query: { mapIndex: MAP_INDEX }, returns: 'the log as text/plain', contentType: 'text/plain' },
  {
    method: 'get', path: `${TRY}/log/stream`, summary: "A try's log, live, over Server-Sent Events (event: log; id: the byte offset after the chunk)",
    query: { mapIndex: MAP_INDEX, offset: 'start here (or Last-Event-ID); default the tail' }, returns: 'text/event-stream', contentType: 'text/event-stream',
  },
  { method: 'get', path: '/pools', summary: 'Pools with the slots in use', returns: '{ pools: ApiPool[] }' },
  {
    method: 'put', path: '/pools/:name', summary: 'Create a pool or change its size',
    body: { description: 'the pool', schema: { type: 'object', required: ['slots'], properties: { slots: { type: 'integer', minimum: 0 }, description: { type: ['string', 'null'] } } } }, returns: 'the pool',
  },
  { method: 'delete', path: '/pools/:name', summary: "Delete a pool (not 'default_pool')", status: 204, returns: 'nothing' },
  { method: 'get', path: '/health', summary: 'The database answers; the age of each scheduler heartbeat', returns: 'ApiHealth' },
  {
    method: 'get', path: '/events', summary: 'Every committed state change, live, over Server-Sent Events (event: change, id: the feed id; resume with Last-Event-ID); a task instance\'s carries its mapIndex',
    query: { dagId: 'only this DAG', lastEventId: 'resume after this id (as the Last-Event-ID header)' }, returns: 'text/event-stream', contentType: 'text/event-stream',
  },
  { method: 'get', path: '/openapi.json', summary: 'This document', returns: 'OpenAPI 3.1' },
];

const errorSchema = { type: 'object', properties: { error: { type: 'object', properties: { code: str, message: str }, required: ['code', 'message'] } } };

export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const params = [...op.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: str }));
    const query = Object.entries(op.query ?? {}).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: str }));
    const path = op.path.replace(/:(\w+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][op.method] = {
      summary: op.summary,
      parameters: [...params, ...query],
      ...(op.body ? { requestBody: { required: true, description: op.body.description, content: { 'application/json': { schema: op.body.schema } } } } : {}),
      responses: {
        [String(op.status ?? 200)]: { description: op.returns, ...(op.status === 204 ? {} : { content: { [op.contentType ?? 'application/json']: {} } }) },
        default: { description: 'an error: { error: { code, message } } (404 not found, 400 bad input, 401 no credentials, 403 a viewer changing something or cross-origin, 415 not JSON)', content: { 'application/json': { schema: errorSchema } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'kiln HTTP API', version, description: 'Times are epoch milliseconds. Mutations take application/json bodies. Types: src/server/api-types.ts.' },
    servers: [{ url: '/api/v1' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a webserverAuth token, or the generated one kiln prints' },
        session: { type: 'apiKey', in: 'cookie', name: 'kiln_session', description: 'set by opening /?token=<token> in a browser' },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}
