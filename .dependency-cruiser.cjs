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
      from: { path: "^src/", pathNot: "^src/(cli\\.ts|demo\\.ts|commands/|io/commands\\.ts)" },
      to: { path: "^src/(cli\\.ts|demo\\.ts|commands/)" },
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
