/**
 * Which node-postgres errors mean "the server went away" (retry later) rather than "this
 * statement is wrong" (a bug: fatal). node-postgres reconnects by itself: the pool drops a
 * connection that broke and opens a new one on the next call, whose statements are prepared
 * again under the same names (see store.ts). What is left to kiln is to tell the two apart.
 */
import { KilnError } from '../../errors.js';
import { causeChain, StoreUnavailableError } from '../errors.js';

/** Socket errors of a server that is down, restarting or out of reach. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN']);
/**
 * SQLSTATEs of a server shutting down or not ready yet: admin_shutdown (a restart, or
 * pg_terminate_backend), crash_shutdown, cannot_connect_now (starting up), too_many_connections.
 * Class 08 (connection exception) is matched as a whole.
 */
const SERVER_GONE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres throws, with no code, for a connection that broke or never came up. */
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable/;

export function isConnectionLost(err: unknown): boolean {
  return causeChain(err).some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECTION_ERRNOS.has(code) || SERVER_GONE_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
    return e instanceof Error && CONNECTION_MESSAGES.test(e.message);
  });
}

/** For describeStoreErrors: a lost connection becomes a StoreUnavailableError naming the server. */
export function describePgError(display: string): (err: unknown) => unknown {
  return (err) => {
    if (err instanceof KilnError || !isConnectionLost(err)) return err;
    // drizzle's own message is the failed query; the driver's, innermost, says what happened.
    const root = causeChain(err).at(-1);
    return new StoreUnavailableError(`PostgreSQL at ${display} is unreachable: ${root instanceof Error ? root.message : String(root)}`, { cause: err });
  };
}
