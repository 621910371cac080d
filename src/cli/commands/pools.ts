import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { DEFAULT_POOL } from '../../store/rows.js';
import { configFrom, type GlobalOptions } from '../config-flags.js';
import { EXIT, formatTable, printJson } from '../output.js';

type Run = (action: () => Promise<number>) => Promise<void>;

export function registerPoolCommands(program: Command, run: Run): void {
  const pools = program.command('pools').description(`pools limit how many slots tasks in them use at once (tasks use '${DEFAULT_POOL}' unless they name one)`);

  pools
    .command('set')
    .description('create a pool or change its size')
    .argument('<name>')
    .argument('<slots>', 'how many slots tasks in this pool may use at once (0 stops them)')
    .option('--description <text>')
    .action((name: string, slotsRaw: string, opts: { description?: string }, cmd: Command) =>
      run(async () => {
        const slots = Number(slotsRaw);
        if (!Number.isInteger(slots) || slots < 0) throw new UsageError(`slots must be an integer >= 0, got '${slotsRaw}'`);
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { savePool }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/pools.js')]);
        await withStore(config, (store) => savePool(store, name, slots, opts.description));
        process.stdout.write(`pool ${name}: ${slots} slots\n`);
        return EXIT.ok;
      }),
    );

  pools
    .command('list')
    .description('pools, their sizes and the slots queued and running tasks use now')
    .option('--json', 'print { pools: [{ name, slots, usedSlots, description }] } as JSON')
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const { poolUsage, withStore } = await import('../../app/scheduler-ops.js');
        const list = await withStore(config, poolUsage);
        if (opts.json) printJson({ pools: list.map((p) => ({ name: p.name, slots: p.slots, usedSlots: p.usedSlots, description: p.description })) });
        else process.stdout.write(formatTable(['pool', 'slots', 'used', 'description'], list.map((p) => [p.name, p.slots, p.usedSlots, p.description])));
        return EXIT.ok;
      }),
    );

  pools
    .command('delete')
    .description(`delete a pool (not '${DEFAULT_POOL}'); tasks naming it wait until it exists again`)
    .argument('<name>')
    .action((name: string, _opts: unknown, cmd: Command) =>
      run(async () => {
        const config = await configFrom(cmd.optsWithGlobals<GlobalOptions>());
        const [{ withStore }, { removePool }] = await Promise.all([import('../../app/scheduler-ops.js'), import('../../app/pools.js')]);
        await withStore(config, (store) => removePool(store, name));
        process.stdout.write(`pool ${name} deleted\n`);
        return EXIT.ok;
      }),
    );
}
