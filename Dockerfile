# The reef-operator image: the operator (Python), plus what the Local provider runs on the
# operator's host: tmux, bash and the pi coding agent (Node.js >= 20.6).
#
#   docker build -t reef-operator:0.1.0 .
#
# The Helm chart (helm/reef-operator) runs it as uid 10001 with a read-only root filesystem,
# HOME=/home/reef and /tmp on emptyDir volumes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# pi needs Node.js >= 20.6; Debian bookworm ships 18, so node comes from the official image.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS node

# The operator alone: the development kit (devkit/: local control plane, Vers simulator,
# scripted model, demo) is a distribution of its own and never enters the image.
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ARG PI_VERSION=0.73.1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

# tmux: agent sessions of Local VMs; git and certificates: what agents reach for first.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tmux git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && npm install -g --no-audit "@mariozechner/pi-coding-agent@${PI_VERSION}" \
    && npm cache clean --force \
    && pi --version

# The pi package (the lieutenant tools), copied onto delegating lieutenants' VMs
# (REEF_PI_PACKAGE, docs/delegation.md), with its runtime dependencies only.
COPY extensions/pi-reef /opt/reef/pi-reef
RUN cd /opt/reef/pi-reef && npm ci --omit=peer --omit=dev --no-audit && npm cache clean --force
ENV REEF_PI_PACKAGE=/opt/reef/pi-reef

COPY --from=wheels /wheels /tmp/wheels
RUN pip install --no-index --find-links /tmp/wheels reef-operator \
    && rm -rf /tmp/wheels \
    && reef-operator --help >/dev/null

# Non-root; the uid the chart's securityContext names.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/reef --shell /bin/bash reef
USER 10001:10001
WORKDIR /home/reef
ENV HOME=/home/reef

EXPOSE 8080 8081 9443
ENTRYPOINT ["reef-operator", "run"]
