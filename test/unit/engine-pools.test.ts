import { describe, expect, it } from 'vitest';
import { EnginePools } from '../../src/scheduler/engine-pools.js';

const t = (pool: string, poolSlots = 1) => ({ pool, poolSlots });

describe('EnginePools', () => {
  it('limits by the configured sizes; a pool not listed is unlimited', () => {
    const pools = new EnginePools(new Map([['p', 2]]));
    expect(pools.fits(t('p', 2))).toBe(true);
    pools.take(t('p'));
    expect(pools.fits(t('p', 2))).toBe(false);
    expect(pools.fits(t('p'))).toBe(true);
    pools.release(t('p'));
    pools.release(t('p')); // never below zero
    expect(pools.snapshot().get('p')).toBe(0);
    for (let i = 0; i < 1000; i++) pools.take(t('other'));
    expect(pools.fits(t('other'))).toBe(true);
  });

  it('caps a pool at what the store counted until the next reset', () => {
    const pools = new EnginePools(new Map([['p', 10]]));
    pools.take(t('p'));
    pools.take(t('p'));
    const atWrite = pools.snapshot();
    // The store left 1 slot free after our 2, one of which it refused: our cap is 2 - 1 + 1 = 2.
    pools.release(t('p'));
    pools.capAt({ p: 1 }, atWrite, [t('p')]);
    expect(pools.fits(t('p'))).toBe(true); // we hold 1 of 2
    pools.take(t('p'));
    expect(pools.fits(t('p'))).toBe(false); // 2 of 2, though the size is 10
    pools.reset();
    expect(pools.fits(t('p'))).toBe(true);
  });
});
