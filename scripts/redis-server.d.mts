import type { ChildProcess } from 'node:child_process';

export declare const NO_REDIS_SERVER: string;
export declare function hasRedisServer(): boolean;
export declare function freePort(): Promise<number>;
export declare function spawnRedis(options: { port: number; dir: string; persistent: boolean }): Promise<ChildProcess>;
