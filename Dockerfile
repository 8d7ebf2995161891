# signin-ingest. Node 24 runs the TypeScript sources directly (type stripping): no build step, no compiler in the image.

# Stage 1: production dependencies only.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Stage 2: the runtime image.
FROM node:24-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# A small V8 young generation keeps the resident set flat (see README Performance). The compile cache (filled below,
# when the image is built) holds the sources already type-stripped: Node then never loads its type-stripping compiler,
# a WebAssembly module of about 25 MB resident. glibc's malloc otherwise raises its mmap threshold after the first
# large buffer is freed (a page's 8 MB query message) and keeps later ones in its heap once freed: a fixed 128 KB
# threshold gives them back at once (`once` over 10,000 real-sized sign-ins: 182 → 163 MB peak; docs/benchmarks.md).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=4 \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 \
    NODE_COMPILE_CACHE=/app/.compile-cache \
    DATA_DIR=/data \
    METRICS_PORT=9464
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY migrations ./migrations
# The only writable place (the embedded database, used only when DATABASE_URL is unset). Everything else can be a
# read-only root filesystem.
RUN mkdir -p /data /app/.compile-cache && chown node:node /data /app/.compile-cache
VOLUME /data
USER node
# Loads every module `run` loads, so the cache is written for this user (Node keys it by uid, Node version and V8
# flags; another uid or NODE_OPTIONS finds no entries and strips at start-up as before). Read-only afterwards is fine.
RUN node src/cli.ts config-doc > /dev/null
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini forwards SIGTERM to Node and reaps children; src/cli.ts drains and exits 0.
ENTRYPOINT ["/usr/bin/tini", "--"]
# The same command the tests run (test/docker.test.ts checks it).
CMD ["node", "src/cli.ts", "run"]
