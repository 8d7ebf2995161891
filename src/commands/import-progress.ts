// Progress of `import` on a terminal (or with PROGRESS=on): one line on stderr, redrawn when a file starts or a batch
// is stored, at most every `everyMs`: files done, records read, events stored, the rate and the current file. Fed by
// importSources' onProgress; the clock is passed in, nothing here reads `process`.

import type { ImportProgress } from "../io/import.ts";
import { formatDuration, SECOND } from "../time.ts";
import { redrawLine } from "./progress.ts";
import type { ProgressTerminal } from "./types.ts";

const count = (n: number) => n.toLocaleString("en-US");

/** `import · files 2/40 · 61,200 records read · 61,000 stored (60,950 new) · 3 rejected · 8,100 records/s · 8s · path` */
export function formatImportProgress(p: ImportProgress, elapsedMs: number): string {
  const stored = p.inserted + p.updated + p.unchanged;
  const rate = elapsedMs > 0 ? Math.round((p.read * SECOND) / elapsedMs) : 0;
  const seconds = formatDuration(Math.round(elapsedMs / SECOND) * SECOND);
  return [
    // Blobs are listed as they are read: their total is not known in advance.
    `import · files ${count(p.filesDone)}${p.files === undefined ? "" : `/${count(p.files)}`}`,
    `${count(p.read)} records read`,
    `${count(stored)} stored (${count(p.inserted)} new)`,
    ...(p.rejected > 0 ? [`${count(p.rejected)} rejected`] : []),
    `${count(rate)} records/s`,
    p.finished ? `done in ${seconds}` : seconds,
    ...(p.finished || p.file === "" ? [] : [p.file]),
  ].join(" · ");
}

export interface ImportProgressLine {
  update(progress: ImportProgress): void;
  /** Ends a line that the import did not finish (a signal, an error), so what follows starts on its own line. */
  end(): void;
}

export function showImportProgress(options: {
  terminal: ProgressTerminal;
  now: () => number;
  /** Least time between two redraws (default 250 ms); the first and the final state are always drawn. */
  everyMs?: number;
}): ImportProgressLine {
  const { terminal, now } = options;
  const every = options.everyMs ?? 250;
  const started = now();
  let last = -Infinity;
  let open = false;
  return {
    update(progress) {
      const t = now();
      if (progress.finished || t - last >= every) {
        last = t;
        redrawLine(terminal, formatImportProgress(progress, t - started), progress.finished);
        open = !progress.finished;
      }
    },
    end() {
      if (open) {
        terminal.write("\n");
        open = false;
      }
    },
  };
}
