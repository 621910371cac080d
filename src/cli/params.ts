import { UsageError } from '../errors.js';

export function parseParams(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`--params must be a JSON object: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`--params must be a JSON object, got ${raw}`);
  return value as Record<string, unknown>;
}
