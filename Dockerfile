# bulk-unassign as one image for every command: `docker run IMAGE worker`, `docker run IMAGE serve --host 0.0.0.0`,
# `docker run IMAGE --version`. docker-compose.yml runs it as a scalable worker service and the console.
# test/unit/deploy-files.test.ts checks this file against the repository (scripts, copied paths, user, entrypoint),
# since the tests cannot build the image.

# ---- build: dev dependencies and the compiler, the same npm scripts CI runs (.ci/run) ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
# The lockfile alone first, so that a source change does not re-run the install.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY jobs ./jobs
RUN npm run build

# ---- runtime: production dependencies, the compiled code and the files it reads at run time ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# package.json also gives `--version` its number (src/cli/cli.ts reads it beside dist/).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# tsc copies no .html/.js assets or .lua files: the compiled code reads them from the source tree beside dist/
# (src/console/static-files.ts, src/store/script-loader.ts), so they keep their src/ paths here.
COPY src/console/public ./src/console/public
COPY src/store/lua ./src/store/lua
# `demo` ingests this file (src/cli/commands/demo.ts); it is 12 kB.
COPY fixtures/demo.csv ./fixtures/demo.csv
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
# REPORTS_DIR defaults to ./reports; a volume mounted here starts out owned by the user below.
RUN mkdir -p /app/reports && chown node:node /app/reports
# The node image's unprivileged user (uid 1000): the process needs no root, only Redis, the API and /app/reports.
USER node
# `serve` listens here (bind it with --host 0.0.0.0 in a container).
EXPOSE 3000
# Liveness, not readiness: see deploy/docker/healthcheck.mjs for why a console's 503 (no worker connected, Redis
# unreachable) still counts as alive, and why a worker is healthy while it runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
# No shell in between: node is PID 1 and receives SIGTERM itself (workers drain in-flight calls, then exit).
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["--help"]
