/**
 * Statements prepared on first use instead of when the store opens. Building a statement with
 * drizzle costs ~1 ms of CPU; a store has ~70 of them and a command uses a few: preparing
 * them all made every command's start ~70 ms slower. Each is still prepared once per store.
 */

/** The statements the builders make, as plain read-only properties. */
export type Prepared<T> = { readonly [K in keyof T]: T[K] extends () => infer R ? R : never };

/**
 * An object whose property `name` is `builders[name]()`, called on first read and kept. A
 * builder that throws (the table is not there yet: not migrated) is tried again on the next
 * read; `onError` may turn its error into a clearer one.
 */
export function lazyStatements<T extends Record<string, () => unknown>>(builders: T, onError?: (name: string, err: unknown) => Error): Prepared<T> {
  const out: Record<string, unknown> = {};
  for (const [name, build] of Object.entries(builders)) {
    Object.defineProperty(out, name, {
      enumerable: true,
      configurable: true,
      get() {
        let value: unknown;
        try {
          value = build();
        } catch (err) {
          throw onError ? onError(name, err) : err;
        }
        Object.defineProperty(out, name, { value, enumerable: true, writable: false, configurable: false });
        return value;
      },
    });
  }
  return out as Prepared<T>;
}
