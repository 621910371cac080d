/**
 * Typed run parameters: a DAG's `paramsSchema` (JSON Schema, draft 2020-12) checked with
 * ajv whenever a run is created (trigger, dags test, backfill, the HTTP API), before any row
 * is written. Defaults come from the schema, then the DAG's `params`, then the run's own.
 *
 * Not in dag/ on purpose: task runners import the authoring API, and ajv (tens of
 * milliseconds to load) has no business in a warm worker; dag() checks only that the schema
 * is an object, and every parse checks the rest here (as it does cron strings). Even here ajv is loaded
 * only when a DAG has a schema (synchronously, through require: both packages are CommonJS),
 * so a cold `kiln dags test` of a DAG without one never pays for it.
 */
import { createRequire } from 'node:module';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { DagValidationError, UsageError } from '../errors.js';
import type { SerializedDag } from '../dag/types.js';

const require = createRequire(import.meta.url);
let ajv: Ajv2020 | null = null;

function loadAjv(): Ajv2020 {
  const { Ajv2020: AjvClass } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  const addFormats = (require('ajv-formats') as { default: (a: Ajv2020) => void }).default;
  const instance = new AjvClass({ allErrors: true, useDefaults: true, strict: false });
  addFormats(instance);
  return instance;
}
const compiled = new Map<string, ValidateFunction>();

function validatorFor(dagId: string, schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    ajv ??= loadAjv();
    try {
      validate = ajv.compile(schema);
    } catch (err) {
      throw new DagValidationError(`DAG '${dagId}': option 'paramsSchema' is not a valid JSON Schema: ${(err as Error).message}`, { dagId, option: 'paramsSchema' });
    }
    compiled.set(key, validate);
  }
  return validate;
}

/** The run's parameters refused by the DAG's paramsSchema; exit 2 from the CLI, 400 from the API. */
export class ParamsError extends UsageError {
  constructor(
    readonly dagId: string,
    /** One entry per violation: `params.limit: must be <= 100`. */
    readonly violations: string[],
  ) {
    super(`DAG '${dagId}': the run's params do not match its paramsSchema:\n  ${violations.join('\n  ')}`);
    this.name = 'ParamsError';
  }
}

/**
 * The parameters a run gets: schema defaults < DAG params < `given`, validated against the
 * DAG's paramsSchema when it has one. Throws ParamsError naming the path of every violation.
 */
export function resolveRunParams(dag: Pick<SerializedDag, 'dagId' | 'params' | 'paramsSchema'>, given: Record<string, unknown> = {}): Record<string, unknown> {
  const params = structuredClone({ ...dag.params, ...given });
  const schema = dag.paramsSchema ?? null;
  if (schema === null) return params;
  const validate = validatorFor(dag.dagId, schema);
  if (!validate(params)) throw new ParamsError(dag.dagId, (validate.errors ?? []).map(describe));
  return params;
}

/** Checks the schema itself, and for a scheduled DAG that its own params satisfy it (scheduled runs get no others). */
export function checkParamsSchema(dag: Pick<SerializedDag, 'dagId' | 'params' | 'paramsSchema' | 'schedule'>): void {
  if (dag.paramsSchema == null) return;
  validatorFor(dag.dagId, dag.paramsSchema);
  if (dag.schedule === null) return;
  try {
    resolveRunParams(dag);
  } catch (err) {
    if (!(err instanceof ParamsError)) throw err;
    throw new DagValidationError(`DAG '${dag.dagId}': option 'params' must satisfy 'paramsSchema' (scheduled runs get no other params):\n  ${err.violations.join('\n  ')}`, { dagId: dag.dagId, option: 'params' });
  }
}

function describe(e: ErrorObject): string {
  const path = `params${e.instancePath.replace(/\/([^/]*)/g, (_, seg: string) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`))}`;
  if (e.keyword === 'required') return `${path}.${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') return `${path}.${(e.params as { additionalProperty: string }).additionalProperty}: is not a known parameter`;
  if (e.keyword === 'enum') return `${path}: must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  return `${path}: ${e.message ?? 'is invalid'}`;
}
