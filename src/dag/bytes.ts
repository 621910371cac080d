const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};
const BYTES_RE = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*$/i;

/**
 * Parses a size: a non-negative integer number of bytes, or a string such as '512MiB',
 * '2GB', '1.5GiB', '4096' (decimal units are powers of 1000, binary ones of 1024). Returns
 * undefined for anything else so the caller can name the option in its error.
 */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const match = BYTES_RE.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_BYTES[match[2]!.toLowerCase()]!);
}
