import { loadConfig, type KilnConfig } from '../config/load.js';

/** Options every command accepts (they override KILN_* variables and kiln.config.*). */
export interface GlobalOptions {
  config?: string;
  dagsFolder?: string;
  database?: string;
  parallelism?: string;
}

export function configFrom(global: GlobalOptions, extra: Partial<Record<keyof KilnConfig, unknown>> = {}): Promise<KilnConfig> {
  return loadConfig({
    configFile: global.config,
    flags: { dagsFolder: global.dagsFolder, databaseUrl: global.database, parallelism: global.parallelism, ...extra },
  });
}
