/** A worker host's check of DAG files: presence remembered for a moment, absence never. */
import { describe, expect, it } from 'vitest';
import { FilePresence } from '../../src/remote/file-presence.js';

describe('FilePresence', () => {
  it('asks the file system once per file within rememberMs, and again after it', () => {
    let now = 0;
    const asked: string[] = [];
    const presence = new FilePresence({ rememberMs: 1_000, now: () => now, exists: (path) => {
      asked.push(path);
      return true;
    } });
    for (let i = 0; i < 100; i++) expect(presence.has('/dags/a.ts')).toBe(true);
    expect(presence.has('/dags/b.ts')).toBe(true);
    expect(asked).toEqual(['/dags/a.ts', '/dags/b.ts']);
    now = 999;
    presence.has('/dags/a.ts');
    expect(asked).toHaveLength(2);
    now = 1_000;
    presence.has('/dags/a.ts');
    expect(asked).toEqual(['/dags/a.ts', '/dags/b.ts', '/dags/a.ts']);
  });

  it('never remembers a missing file, and forgets one that went missing', () => {
    let now = 0;
    let present = false;
    let asks = 0;
    const presence = new FilePresence({ rememberMs: 1_000, now: () => now, exists: () => {
      asks++;
      return present;
    } });
    expect(presence.has('/dags/late.ts')).toBe(false);
    expect(presence.has('/dags/late.ts')).toBe(false);
    expect(asks).toBe(2);
    present = true; // copied in: seen at once
    expect(presence.has('/dags/late.ts')).toBe(true);
    present = false;
    now = 5_000; // gone, and the memory of it expired: seen as gone
    expect(presence.has('/dags/late.ts')).toBe(false);
    expect(presence.has('/dags/late.ts')).toBe(false);
    expect(asks).toBe(5);
  });

  it('remembers a missing file too when asked to (version snapshots a host does not have)', () => {
    let now = 0;
    let asks = 0;
    const presence = new FilePresence({ rememberMs: 1_000, rememberMissing: true, now: () => now, exists: () => {
      asks++;
      return false;
    } });
    for (let i = 0; i < 10; i++) expect(presence.has('/home/sources/v1/a.ts')).toBe(false);
    expect(asks).toBe(1);
    now = 1_000;
    expect(presence.has('/home/sources/v1/a.ts')).toBe(false);
    expect(asks).toBe(2);
  });
});
