# syntax=docker/dockerfile:1
# csi-secrets-provider-aws: the provider's image (the Helm chart's image.repository).
#
#   docker build -t ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws:$(node -p 'require("./package.json").version') .
#
# Three stages on Node 24 (current LTS) slim: build (all dependencies + tsc), deps (production
# dependencies only), runtime (deps + dist/ + proto/ + package.json, nothing else).

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile src/ to dist/ -------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the dev dependency `node` (it pins Node 24 for this repository's scripts)
# would download a second, 120 MB Node binary in its install script; this image already is Node 24,
# and no dependency needs an install script to compile.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# --- deps: production dependencies only ------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out every dev dependency, `node` included (package-lock marks it dev).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# npm and corepack are not needed to run: remove them (less to patch, less to scan).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
ENV NODE_ENV=production
# V8 sized for the chart's 100Mi limit: old generation capped at 48 MiB and young-generation
# semi-spaces at 1 MiB (measured in an idle provider: ~60 MiB RSS instead of ~73 MiB with 4 MiB
# semi-spaces; a little more scavenging CPU per mount, see docs/benchmarks.md). The live heap of a
# burst of 110 first mounts stays under ~36 MiB. Without a cap V8 sizes its heap from the host's
# memory and would grow until the kernel OOM-kills the pod instead of collecting garbage. Raise
# with the memory limit (chart `env`).
ENV NODE_OPTIONS="--max-old-space-size=48 --max-semi-space-size=1"
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY proto/ ./proto/
COPY package.json ./
# A non-root user by default (uid 1000, `node` in the base image), for `docker run` and for
# driver-writes mode with a socket directory prepared for that uid. In a cluster the chart runs the
# container as uid 0 with no capabilities (podSecurityContext, see values.yaml): the socket
# directory and the kubelet's pod volumes are root-owned hostPaths, so that is what writing
# them takes.
USER 1000:1000
# Node is PID 1: the server handles SIGTERM/SIGINT itself (graceful stop) and spawns no children,
# so no init (tini) is needed. No HEALTHCHECK: Kubernetes ignores it; the chart probes /healthz.
ENTRYPOINT ["node", "dist/main.js"]
