/**
 * Who may use the web UI and API. Tokens come from the `webserverAuth` setting, each with a
 * role (`viewer` reads, `admin` also changes things); without it, one admin token is
 * generated and kept in `<homeDir>/webserver-token` (mode 0600, reused across restarts), and
 * the server may only listen on loopback.
 *
 * A request proves itself with `Authorization: Bearer <token>`, or with the session cookie a
 * browser gets by opening the printed URL once (`/?token=...`: checked, swapped for an
 * HttpOnly SameSite=Strict cookie, and stripped by a redirect). The cookie holds an HMAC of
 * the token, not the token, and stays valid as long as the token does.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'hono';
import type { KilnConfig } from '../config/load.js';
import type { WebserverRole } from '../config/schema.js';
import { ConfigError } from '../errors.js';

export const SESSION_COOKIE = 'kiln_session';

export interface Principal {
  role: WebserverRole;
  name: string | null;
}

export class WebAuth {
  private readonly byTokenHash = new Map<string, Principal>();
  private readonly bySession = new Map<string, Principal>();

  constructor(tokens: Array<{ token: string; role: WebserverRole; name: string | null }>) {
    for (const t of tokens) {
      const principal = { role: t.role, name: t.name };
      this.byTokenHash.set(hash(t.token), principal);
      this.bySession.set(sessionOf(t.token), principal);
    }
  }

  /** The principal a token names, or null. */
  check(token: string): Principal | null {
    return this.byTokenHash.get(hash(token)) ?? null;
  }

  /** The session cookie value for a valid token (null for an invalid one). */
  sessionFor(token: string): string | null {
    return this.check(token) === null ? null : sessionOf(token);
  }

  /** From `Authorization: Bearer` or the session cookie; null when neither is valid. */
  authenticate(c: Context): Principal | null {
    const header = c.req.header('authorization');
    const bearer = header === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (bearer !== undefined) return this.check(bearer);
    const cookie = readCookie(c.req.header('cookie'), SESSION_COOKIE);
    if (cookie === undefined) return null;
    for (const [session, principal] of this.bySession) if (safeEqual(session, cookie)) return principal;
    return null;
  }
}

/**
 * The server's auth from the config: the configured tokens, or a generated admin token
 * (returned, to be printed in the URL) when none are and the server listens on loopback.
 */
export function openWebAuth(config: Pick<KilnConfig, 'webserverAuth' | 'homeDir'>, host: string): { auth: WebAuth; generatedToken: string | null } {
  if (config.webserverAuth !== null) return { auth: new WebAuth(config.webserverAuth.tokens), generatedToken: null };
  if (!isLoopback(host)) {
    throw new ConfigError(`the web server may listen on ${host}, beyond this machine, only with tokens configured (webserverAuth / KILN_WEBSERVER_AUTH: { "tokens": [{ "token": "...", "role": "admin" }] })`);
  }
  const token = generatedToken(config.homeDir);
  return { auth: new WebAuth([{ token, role: 'admin', name: 'generated' }]), generatedToken: token };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `<homeDir>/webserver-token`: created once (0600), then reused, so a restart keeps browsers signed in. */
function generatedToken(homeDir: string): string {
  const file = join(homeDir, 'webserver-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return token;
  }
  mkdirSync(homeDir, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return token;
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function sessionOf(token: string): string {
  return createHmac('sha256', token).update('kiln web session v1').digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
