/**
 * Preloaded (`node --import`) into a command the mapping case runs in a fresh process: as
 * the process exits, writes its own process.resourceUsage() (maxRSS: the kernel's peak
 * resident set of this process, worker threads included, children not) as JSON to the file
 * named by BENCH_RUSAGE_FILE. Does nothing else.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_RUSAGE_FILE;
if (file) process.on('exit', () => writeFileSync(file, JSON.stringify(process.resourceUsage())));
