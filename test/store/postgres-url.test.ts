import { describe, expect, test } from 'vitest';
import { parsePostgresUrl } from '../../src/store/postgres/connection.js';

describe('parsePostgresUrl', () => {
  test('passes a plain URL through', () => {
    const t = parsePostgresUrl('postgres://kiln@db.example:5433/kiln?sslmode=require');
    expect(t.schema).toBeUndefined();
    expect(t.pool).toEqual({ connectionString: 'postgres://kiln@db.example:5433/kiln?sslmode=require' });
  });

  test('turns ?schema= into a search_path option, merged with given options', () => {
    const t = parsePostgresUrl('postgresql://u:secret@h/db?schema=kiln_a&application_name=x');
    expect(t.schema).toBe('kiln_a');
    expect(t.pool).toEqual({ connectionString: 'postgresql://u:secret@h/db?application_name=x', options: '-c search_path=kiln_a' });
    expect(t.display).not.toContain('secret');

    const merged = parsePostgresUrl('postgres://h/db?options=-c%20statement_timeout%3D5000&schema=s1');
    expect(merged.pool).toEqual({ connectionString: 'postgres://h/db', options: '-c statement_timeout=5000 -c search_path=s1' });
  });

  test('refuses a schema that is not a plain identifier', () => {
    expect(() => parsePostgresUrl('postgres://h/db?schema=a;drop')).toThrow(/plain lower-case identifier/);
    expect(() => parsePostgresUrl('postgres://h/db?schema=Kiln')).toThrow(/plain lower-case identifier/);
    expect(() => parsePostgresUrl('postgres://h/db?schema=a%20b')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
