# syntax=docker/dockerfile:1
# csi-secrets-provider-aws: the provider's image (the Helm chart's image.repository).
#
#   docker build -t ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws:$(node -p 'require("./package.json").version') .
#
# Two stages on Node 24 (current LTS) slim: build (all dependencies, tsc, then esbuild bundles the
# server with its runtime dependencies into dist/bundle/, see scripts/bundle.mjs), runtime
# (dist/bundle/ + package.json + Node's compile cache for them, nothing else: no node_modules).

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile src/ to dist/, bundle the server into dist/bundle/ --------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the dev dependency `node` (it pins Node 24 for this repository's scripts)
# would download a second, 120 MB Node binary in its install script; this image already is Node 24.
# esbuild's install script only checks its binary (@esbuild/<platform>, an optional dependency npm
# installs for this platform); no dependency needs an install script to build.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY src/ src/
RUN npm run build

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
# The bundle sits two directories below package.json, as dist/*/ does (version.ts looks upwards
# for package.json; metrics.ts reads ../../package.json).
COPY --from=build /src/dist/bundle ./dist/bundle
COPY package.json ./
# Node's compile cache, filled now by starting the server once (scripts/compile-cache.mjs), read at
# every start: V8 takes the compiled code of the modules and of the start-up path from it instead
# of compiling their sources again (about a fifth of start-up CPU; under the chart's 50m CPU limit
# every CPU millisecond at start is 20 ms of wall time). Filled as root, the uid the chart runs
# the container with (Node keeps entries per uid); read-only at run time (the chart's root
# filesystem is read-only), and Node checks every entry against its file, so it can only be used
# or ignored, never wrong.
ENV NODE_COMPILE_CACHE=/app/compile-cache
RUN --mount=type=bind,source=scripts/compile-cache.mjs,target=/tmp/compile-cache.mjs \
    node /tmp/compile-cache.mjs dist/bundle/main.js
# A non-root user by default (uid 1000, `node` in the base image), for `docker run` and for
# driver-writes mode with a socket directory prepared for that uid. In a cluster the chart runs the
# container as uid 0 with no capabilities (podSecurityContext, see values.yaml): the socket
# directory and the kubelet's pod volumes are root-owned hostPaths, so that is what writing
# them takes.
USER 1000:1000
# Node is PID 1: the server handles SIGTERM/SIGINT itself (graceful stop) and spawns no children,
# so no init (tini) is needed. No HEALTHCHECK: Kubernetes ignores it; the chart probes /healthz.
# dist/bundle/main.js is dist/main.js (package.json main) with its dependencies bundled in.
ENTRYPOINT ["node", "dist/bundle/main.js"]
