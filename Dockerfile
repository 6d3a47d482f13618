# strata controller image.
#
#   docker build -t strata:0.1.0 .
#   docker run -p 8080:8080 -v $PWD/controller.yaml:/etc/strata/controller.yaml:ro strata:0.1.0
#
# There is no build step: bin/strata.js registers tsx (a runtime dependency) and runs the
# TypeScript sources in src/ directly. See docs/deploying-the-controller.md.

# ---------------------------------------------------------------------------- deps
# Production dependencies only. ssh2 compiles an optional native crypto addon (and its
# optional cpu-features dependency) with node-gyp; the compilers live in this stage only.
# Without them ssh2 falls back to pure JavaScript, so a build without them still works.
FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# ---------------------------------------------------------------------------- final
# ssh2 and isomorphic-git are pure JavaScript: no openssh-client and no git needed.
FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="strata" \
      org.opencontainers.image.description="GitOps reconciliation controller for machines and the services on them" \
      org.opencontainers.image.licenses="MIT"

# The controller runs as uid/gid 10001 (the Helm chart's runAsUser / fsGroup). Its home
# holds ~/.ssh/known_hosts, the default known_hosts file for machines whose network model
# sets neither ssh.hostKey nor ssh.knownHosts.
RUN groupadd --gid 10001 strata \
 && useradd --uid 10001 --gid 10001 --home-dir /home/strata --create-home --shell /usr/sbin/nologin strata \
 && mkdir -p /var/lib/strata-controller /etc/strata/secrets /home/strata/.ssh \
 && chown 10001:10001 /var/lib/strata-controller /home/strata/.ssh \
 && chmod 0700 /var/lib/strata-controller /home/strata/.ssh

WORKDIR /app
ENV NODE_ENV=production \
    STRATA_STATE_DIR=/var/lib/strata-controller \
    HOME=/home/strata
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
# .dockerignore leaves out src/**/*.test.ts; the runtime's sh files (src/targets/runtime/) are needed.
COPY src ./src

# The recorded state: generations, journal, Git clones, local machines' roots.
VOLUME ["/var/lib/strata-controller"]
USER 10001:10001
EXPOSE 8080

# Assumes the configuration listens on port 8080 (0.0.0.0:8080 or 127.0.0.1:8080).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "/app/bin/strata.js"]
CMD ["controller", "--config", "/etc/strata/controller.yaml"]
