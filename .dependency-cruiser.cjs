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
    { name: 'metrics-boundary', comment: 'metrics/ sees dag types, executor types, the failure reasons and errors; the app layer wires its sources',
      severity: 'error', from: { path: '^src/metrics/' }, to: { path: kilnExcept('errors\\.ts', 'dag/types\\.ts', 'executor/types\\.ts', 'protocol/failure-reason\\.ts', 'metrics/') } },
    { name: 'server-boundary', comment: 'the HTTP API calls app/ use cases over the store interface; never a runtime, a dialect or the scheduler itself',
      severity: 'error', from: { path: '^src/server/' },
      to: { path: '^(src/(scheduler|executor|parsing|protocol|remote|cli)/|src/store/(sqlite/|postgres/|index\\.ts)|workers/)' } },
    { name: 'server-no-db-or-pool-libs', severity: 'error', from: { path: '^src/server/' },
      to: { path: 'node_modules/(drizzle-orm|better-sqlite3|pg|piscina|tinypool|execa|pidusage)/' } },
    { name: 'ui-boundary', comment: 'the browser app talks only to /api/v1: of kiln it imports the API types (and the dag types they name)',
      severity: 'error', from: { path: '^ui/' }, to: { path: '^(src/|workers/)', pathNot: '^src/(server/api-types|dag/types)\\.ts$' } },
    { name: 'ui-no-node', severity: 'error', from: { path: '^ui/' }, to: { dependencyTypes: ['core', 'npm', 'npm-dev'] } },
    { name: 'remote-boundary', comment: 'the bullmq executor and kiln worker: executor, protocol, dag types and errors; never the store or the scheduler (a worker host holds no database)',
      severity: 'error', from: { path: '^src/remote/' }, to: { path: kilnExcept('errors\\.ts', 'protocol/', 'dag/types\\.ts', 'executor/', 'remote/') } },
    { name: 'remote-no-db-libs', severity: 'error', from: { path: '^src/remote/' },
      to: { path: 'node_modules/(drizzle-orm|better-sqlite3|pg)/' } },
    { name: 'nothing-imports-cli', severity: 'error', from: { pathNot: '^src/cli/' }, to: { path: '^src/cli/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
