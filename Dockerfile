# syntax=docker/dockerfile:1
# Kindling in a container. Build:  docker build -t kindling .
# Run (host network: DHCP and TFTP need the machines' broadcast domain, not a bridge):
#   docker run -d --name kindling --network host --cap-add NET_BIND_SERVICE \
#     -v kindling:/var/lib/kindling kindling serve --strict-listeners --advertise 10.0.0.1
# docs/operations.md explains the capabilities, the volume and the health check.

# ---- build: dependencies (better-sqlite3 compiles here if no prebuilt binary fits), then dist/ ----
FROM node:22-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kindling
COPY package.json package-lock.json ./
# Scripts off so this layer depends on the lock file alone (`prepare` would compile src/, not copied yet);
# better-sqlite3's native install is the one script the runtime needs.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The image runs dist/ (bin/kindling.js picks it); the sources and the dev tools (tsc) stay behind.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && rm -rf src tsconfig.json tsconfig.build.json
COPY bin ./bin
COPY profiles ./profiles
# ipxe/bin (self-built iPXE binaries, when present) is served instead of Debian's package.
COPY ipxe ./ipxe

# ---- runtime ----
FROM node:22-bookworm-slim
# Debian's ipxe: undionly.kpxe, ipxe.efi, snponly.efi, staged into the data dir at start and served by TFTP
# and at /ipxe-bin/. The node binary gets CAP_NET_BIND_SERVICE as a file capability so the unprivileged
# user can bind ports 67 and 69 (it still needs the capability in the container's bounding set, which
# Docker grants by default and --cap-add NET_BIND_SERVICE makes explicit).
# Debian's signed shim and netboot GRUB (the Secure Boot path, src/tftp/loaders.ts) are unpacked, not
# installed: only their .efi files are needed, and their maintainer scripts would try to set up a boot loader.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe ipmitool libcap2-bin \
 && case "$(dpkg --print-architecture)" in \
      amd64) loaders="shim-signed grub-efi-amd64-signed" ;; \
      arm64) loaders="grub-efi-arm64-signed" ;; \
      *) loaders="" ;; \
    esac \
 && if [ -n "$loaders" ]; then cd /tmp && apt-get download $loaders \
      && for deb in /tmp/*.deb; do dpkg -x "$deb" /; done && rm -f /tmp/*.deb; fi \
 && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/node)" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/kindling && chown node:node /var/lib/kindling
WORKDIR /opt/kindling
COPY --from=build /opt/kindling ./

ENV NODE_ENV=production \
    KINDLING_DATA_DIR=/var/lib/kindling
VOLUME ["/var/lib/kindling"]
USER node
EXPOSE 8080/tcp 69/udp 67/udp 4011/udp

# Asks /healthz (SELECT 1 against the database) of the instance holding the data dir, on the port it really
# bound (read from <dataDir>/serve.json), however that port was set: flag, environment or config file.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/opt/kindling/bin/kindling.js", "healthcheck"]

# Kindling handles SIGTERM itself (running TFTP transfers get 5 s, then HTTP and the database close).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/kindling/bin/kindling.js"]
CMD ["serve", "--strict-listeners"]
