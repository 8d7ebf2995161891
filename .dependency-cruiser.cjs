// `npm run lint:deps` (part of `npm run check`): the import graph of src/ points one way. Type-only imports count
// (tsPreCompilationDeps): a type cycle is still two modules that cannot be understood one without the other.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "No import cycle, type-only imports included.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "entry-points-on-top",
      comment:
        "Nothing imports the CLI, its commands or the demo: they are the top layer (io/commands.ts is import/export's).",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/(cli\\.ts|main\\.ts|demo\\.ts|commands/|io/commands\\.ts)" },
      to: { path: "^src/(cli\\.ts|main\\.ts|demo\\.ts|commands/)" },
    },
    {
      name: "events-neutral",
      comment:
        "src/events/ (event classification, the JSON scan behind it, the stream catalogue) is shared by store/, io/, " +
        "ingest/ and config.ts, so it imports nothing of the project outside itself.",
      severity: "error",
      from: { path: "^src/events/" },
      to: { path: "^src/", pathNot: "^src/events/" },
    },
    {
      name: "store-io-below-ingest",
      comment:
        "store/ (SQL) and io/ (import, export) sit below ingest/ (the Graph reading loop): what they share with it " +
        "lives in src/events/. Import reuses the daemon's checks through src/events/, never through ingest/.",
      severity: "error",
      from: { path: "^src/(store|io)/" },
      to: { path: "^src/ingest/" },
    },
    {
      name: "base-below-layers",
      comment:
        "The base modules (configuration, logging, time, errors, redaction) import no layer above them; " +
        "config.ts may read the stream catalogue (src/events/), which imports nothing.",
      severity: "error",
      from: { path: "^src/(config|log|time|errors|redact)\\.ts$" },
      to: { path: "^src/(ingest|store|io|graph|commands|simulator)/|^src/(app|cli|main|check|status|demo)\\.ts$" },
    },
    {
      name: "src-not-tests",
      comment: "The product does not import tests, benchmarks or scripts.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts)/" },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
  },
};
