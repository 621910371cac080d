/** Built-in executor 'process': the local executor, pre-warming (and defaulting to) the process isolation. */
import { createLocalExecutor } from '../local-executor.js';
import type { ExecutorFactory } from '../types.js';

export const defaultIsolation = 'process';

const factory: ExecutorFactory = (options) => createLocalExecutor(options);
export default factory;
