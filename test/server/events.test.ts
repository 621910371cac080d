/**
 * The change feed over SSE (/api/v1/events) through real HTTP on both databases: changes made
 * through the API arrive as `change` events with the feed id as the SSE id; a reconnect with
 * Last-Event-ID gets exactly what it missed, then follows live; a trimmed-away id gets `reset`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databasesUnderTest } from '../helpers/databases.js';
import { openSse, type SseMessage } from '../helpers/sse.js';
import { webProject, type WebProject } from './web-setup.js';

const databases = await databasesUnderTest('events');
afterAll(async () => {
  for (const db of databases) await db.cleanup();
});

const changes = (messages: SseMessage[]) => messages.filter((m) => m.event === 'change').map((m) => ({ id: Number(m.id), ...JSON.parse(m.data) }));

describe.each(databases)('change feed over SSE on $name', (db) => {
  let p: WebProject;
  beforeAll(async () => {
    p = await webProject(db);
  });
  afterAll(async () => {
    await p?.close();
  });

  it('streams changes live, and a reconnect with Last-Event-ID resumes without a gap or a repeat', async () => {
    const url = `${p.web.url}api/v1/events`;
    const first = await openSse(url, p.auth);
    expect(first.status).toBe(200);
    const hello = await first.next();
    expect(hello.event).toBe('hello');
    const start = Number(hello.id);
    expect(start).toBeGreaterThan(0); // the seeded `dags test` run left events

    // A trigger and a mark through the API: each state change is one event, in order.
    expect((await p.api('/dags/web_demo/runs', { method: 'POST', json: { runId: 'live1' } })).status).toBe(201);
    expect((await p.api('/dags/web_demo/runs/live1/tasks/greet/mark', { method: 'POST', json: { state: 'success' } })).status).toBe(200);
    const seen = changes(await first.until((m) => m.event === 'change' && JSON.parse(m.data).taskId === 'greet'));
    expect(seen.map((e) => [e.kind, e.runId, e.taskId, e.state])).toEqual([
      ['run', 'live1', null, 'queued'],
      ['ti', 'live1', 'greet', 'success'],
    ]);
    expect(seen[0].id).toBeGreaterThan(start);
    expect(seen[1].id).toBeGreaterThan(seen[0].id);
    expect(seen.every((e) => e.dagId === 'web_demo' && typeof e.at === 'number')).toBe(true);
    first.close();
    const lastSeen = seen[1].id;

    // While nobody listens: two more changes.
    await p.api('/dags/web_demo/runs/live1/tasks/flaky/mark', { method: 'POST', json: { state: 'failed' } });
    await p.api('/dags/web_demo/runs', { method: 'POST', json: { runId: 'live2' } });

    const resumed = await openSse(url, { ...p.auth, 'last-event-id': String(lastSeen) });
    const caughtUp = await resumed.until((m) => m.event === 'hello');
    expect(changes(caughtUp).map((e) => [e.runId, e.taskId, e.state])).toEqual([
      ['live1', 'flaky', 'failed'],
      ['live2', null, 'queued'],
    ]);
    expect(changes(caughtUp)[0].id).toBeGreaterThan(lastSeen);
    const position = Number(caughtUp[caughtUp.length - 1]!.id);
    expect(position).toBe(changes(caughtUp)[1].id);
    // ...and then it follows live.
    await p.api('/dags/web_demo/runs/live2/tasks/greet/mark', { method: 'POST', json: { state: 'failed' } });
    const live = changes(await resumed.until((m) => m.event === 'change'));
    expect(live.map((e) => [e.runId, e.taskId, e.state])).toEqual([['live2', 'greet', 'failed']]);
    expect(live[0].id).toBeGreaterThan(position);
    resumed.close();

    // The same resume point again (say, two tabs): the same events, from the store.
    const again = await openSse(`${url}?lastEventId=${lastSeen}`, p.auth);
    const replay = changes(await again.until((m) => m.event === 'hello'));
    expect(replay.map((e) => e.id)).toEqual([...changes(caughtUp).map((e) => e.id), live[0].id]);
    again.close();

    // ?dagId= keeps one DAG's events only.
    const other = await openSse(`${url}?dagId=other&lastEventId=${lastSeen}`, p.auth);
    expect(changes(await other.until((m) => m.event === 'hello'))).toEqual([]);
    other.close();
  });

  it('tells a reader whose id was trimmed away to reload (reset)', async () => {
    const range = (await p.store.eventIdRange())!;
    expect(await p.store.trimEvents(Date.now() + 60_000, 100_000)).toBeGreaterThan(0);
    const stream = await openSse(`${p.web.url}api/v1/events`, { ...p.auth, 'last-event-id': String(range.first) });
    const [reset] = await stream.until((m) => m.event === 'hello');
    expect(reset).toMatchObject({ event: 'reset', id: String(range.last) });
    stream.close();
    expect((await p.api('/health')).status).toBe(200);
  });
});
