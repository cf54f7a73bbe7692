# syntax=docker/dockerfile:1
# csi-secrets-provider-aws: the provider's image (the Helm chart's image.repository).
#
#   docker build -t ghcr.io/csi-secrets-provider-aws/csi-secrets-provider-aws:$(node -p 'require("./package.json").version') .
#
# Releases build it for linux/amd64 and linux/arm64 and push it there (.github/workflows/release.yml).
#
# Two stages on Node 24 (current LTS) slim: build (all dependencies, tsc, then esbuild bundles the
# server with its runtime dependencies into dist/bundle/, see scripts/bundle.mjs), runtime
# (dist/bundle/ + package.json + Node's compile cache for them, nothing else: no node_modules).

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile src/ to dist/, bundle the server into dist/bundle/ --------------------------
# The product only: tools/ (emulator, bench, demo) is not in the build context (.dockerignore).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# .npmrc: legacy-peer-deps, so npm ci installs exactly the lock (no peers of the helm/kubectl test tools).
COPY package.json package-lock.json .npmrc ./
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
# V8's old generation capped at 40% of the container's memory limit, young-generation semi-spaces
# at 1 MiB. Node takes "available memory" from the cgroup's limit (libuv reads v1
# memory.limit_in_bytes and v2 memory.max): measured in a real (v1) cgroup, the cap is 40 MiB at
# 100Mi, 80 MiB at 200Mi, 410 MiB at 1Gi, and 40% of the machine's memory without a limit. Raising
# the chart's limit raises it; no env to edit.
# Why 40%: what the process needs besides the old generation is mostly fixed, not a share of the
# limit. Measured in a 100Mi cgroup, node's pages charged to it as on a cold start (see
# docs/benchmarks.md, "Start-up in the box"): idle RSS 65.6 MiB = 44.8 MiB of node's mapped text
# and data + 20.8 MiB anonymous, of which 12.4 MiB V8 heap. A burst of 110 first mounts of 10
# objects: V8 heap ≤ 28 MiB, anonymous ≤ 46 MiB (~18 MiB outside the heap: Buffers of AWS answers
# and gRPC, malloc, stacks), node's pages squeezed to ~40 MiB; in an 80Mi cgroup the same burst
# thrashed (node's pages evicted and read back, every mount timing out). So about 60 MiB of the
# 100Mi are spoken for beside the old generation and 40 MiB are left: above every heap peak
# measured (28 MiB in that burst, 30-39 MiB with garbage in an overload of 300 concurrent first
# mounts). The former fixed 48 MiB, filled, would leave the kernel less than node's pages need.
# Semi-spaces of 1 MiB: ~60 MiB idle RSS instead of ~73 MiB with 4 MiB ones, for a little more
# scavenging CPU per mount (up to a 512Mi limit V8 picks 1 MiB itself; set so every limit agrees).
ENV NODE_OPTIONS="--max-old-space-size-percentage=40 --max-semi-space-size=1"
# glibc's malloc gives every thread that allocates (libuv's pool, V8's GC helpers) an arena of its
# own, each kept at its high-water mark: 4-8 MiB of the 100Mi after a burst. Two arenas: measured in
# the box (npm run bench -- --box), 3-4 MiB less anonymous memory at the burst's peak, fewer of
# node's pages evicted, and the burst's CPU 4.0 s instead of 4.2-4.5 s.
ENV MALLOC_ARENA_MAX=2
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
