/** The OpenAPI document matches the routes: every route the server has is documented, and nothing else. */
import { describe, expect, it } from 'vitest';
import { createWebApp, API_PREFIX } from '../../src/server/app.js';
import { WebAuth } from '../../src/server/auth.js';
import type { ServerDeps } from '../../src/server/deps.js';
import { openApiDocument } from '../../src/server/openapi.js';

describe('OpenAPI document', () => {
  it('documents every API route and only those', () => {
    // Routes are registered without touching their dependencies.
    const app = createWebApp({} as ServerDeps, { auth: new WebAuth([]) });
    const routes = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && r.path.startsWith(`${API_PREFIX}/`))
        .map((r) => `${r.method.toLowerCase()} ${r.path.slice(API_PREFIX.length).replace(/:(\w+)/g, '{$1}')}`),
    );
    const doc = openApiDocument('1') as { openapi: string; paths: Record<string, Record<string, unknown>> };
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`)));
    expect(routes.size).toBeGreaterThan(20);
    expect([...documented].sort()).toEqual([...routes].sort());
    expect(doc.openapi).toBe('3.1.0');
    for (const [path, ops] of Object.entries(doc.paths)) {
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(ops) as Array<{ parameters: Array<{ name: string; in: string }> }>) {
        expect(op.parameters.filter((x) => x.in === 'path').map((x) => x.name)).toEqual(params);
      }
    }
  });
});
