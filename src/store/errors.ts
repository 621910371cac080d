/**
 * Store errors the rest of kiln can act on without knowing the dialect.
 *
 * Each dialect describes its driver's errors once, at the store's edge (describeStoreErrors
 * wraps the opened store): a lost or refused connection becomes a StoreUnavailableError
 * (code STORE_UNAVAILABLE: the scheduler keeps what it has in memory and retries), an error
 * about the database file itself becomes a KilnError naming the file. Everything else (a
 * constraint violation, a syntax error: a bug, not an outage) passes through unchanged.
 */
import { KilnError } from '../errors.js';

/** The database did not answer: connection refused or lost, server shutting down or starting up. */
export class StoreUnavailableError extends KilnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
    this.name = 'StoreUnavailableError';
  }
}

export function isStoreUnavailable(err: unknown): boolean {
  return err instanceof KilnError && err.code === 'STORE_UNAVAILABLE';
}

/**
 * The same store, with every error its methods throw (or reject with) passed through
 * `describe` once. A Proxy, so methods added to a store later are covered without a list to
 * keep in step; the methods run with the store itself as `this`, so its own internal calls
 * are not wrapped twice. Costs one extra promise hop per call.
 */
export function describeStoreErrors<T extends object>(store: T, describe: (err: unknown) => unknown): T {
  // Per method: the wrapper, and the function it wraps (a method replaced later, as the
  // benchmarks do to count transactions, gets a new wrapper).
  const wrapped = new Map<PropertyKey, { of: unknown; fn: unknown }>();
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(prop)?.of === value ? wrapped.get(prop)!.fn : undefined;
      if (fn === undefined) {
        fn = (...args: unknown[]): unknown => {
          try {
            const out: unknown = value.apply(target, args);
            return out instanceof Promise ? out.catch((err: unknown) => Promise.reject(describe(err))) : out;
          } catch (err) {
            throw describe(err);
          }
        };
        wrapped.set(prop, { of: value, fn });
      }
      return fn;
    },
  });
}

/** The error and its causes (drizzle wraps driver errors in DrizzleQueryError.cause), outermost first. */
export function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err; e !== null && e !== undefined && out.length < 8; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}
