/**
 * Runs the variants of a comparison interleaved (A B C A B C ...), never all of A then all
 * of B, so that drift on a shared machine (other load, thermal state, JIT warm-up of this
 * process) falls on every variant alike. A variant may ask for fewer repetitions (spawn);
 * it then runs in the first rounds only.
 *
 *   const out = await interleave(3, { thread: { run }, spawn: { run, reps: 1 } });
 *   // out.thread: [r1, r2, r3], out.spawn: [r1]
 */
export async function interleave(reps, variants, { onRound } = {}) {
  const names = Object.keys(variants);
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < reps; round++) {
    // Rotate the starting variant each round so no variant always runs first after a pause.
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length];
      const v = variants[name];
      if (round >= (v.reps ?? reps)) continue;
      out[name].push(await v.run(round));
    }
    onRound?.(round);
  }
  return out;
}
