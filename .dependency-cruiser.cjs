/**
 * The module boundaries of DESIGN.md, enforced by `npm run boundaries` (part of `npm test`).
 * Keep this table in step with the one in DESIGN.md.
 */
const kilnExcept = (...allowed) => `^src/(?!${allowed.join('|')})`;
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    { name: 'protocol-dag-pure', comment: 'protocol/ and dag/ import nothing of kiln but errors (and each other for types)',
      severity: 'error', from: { path: '^src/(protocol|dag)/' }, to: { path: kilnExcept('errors\\.ts', 'protocol/', 'dag/') } },
    { name: 'protocol-dag-no-libs', severity: 'error', from: { path: '^src/(protocol|dag)/' }, to: { dependencyTypes: ['npm', 'npm-dev'] } },
    { name: 'workers-lean', comment: 'a warm runner holds no DB driver, pool library or scheduler',
      severity: 'error', from: { path: '^workers/' }, to: { path: kilnExcept('errors\\.ts', 'protocol/', 'dag/') } },
    { name: 'workers-no-heavy-libs', severity: 'error', from: { path: '^workers/' },
      to: { path: 'node_modules/(drizzle-orm|better-sqlite3|pg|piscina|tinypool|execa|commander|pidusage)/' } },
    { name: 'executor-boundary', severity: 'error', from: { path: '^src/executor/' },
      to: { path: '^src/(store|scheduler|cli|config|parsing)/' } },
    { name: 'store-boundary', severity: 'error', from: { path: '^src/store/' },
      to: { path: '^src/(executor|scheduler|cli|config|parsing|protocol)/' } },
    { name: 'scheduler-boundary', comment: 'the scheduler sees only the store and executor interfaces',
      severity: 'error', from: { path: '^src/scheduler/' },
      to: { path: '^src/(store/(sqlite|postgres)/|executor/(runtimes|registry)|cli/)' } },
    { name: 'nothing-imports-cli', severity: 'error', from: { pathNot: '^src/cli/' }, to: { path: '^src/cli/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
