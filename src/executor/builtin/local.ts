/** Built-in executor 'local': the local executor with the default isolation, 'process'. */
import { createLocalExecutor } from '../local-executor.js';
import type { ExecutorFactory } from '../types.js';

export const defaultIsolation = 'process';

const factory: ExecutorFactory = (options) => createLocalExecutor(options);
export default factory;
