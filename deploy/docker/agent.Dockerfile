# syntax=docker/dockerfile:1
# Customer side of Predis Federation: the agent and its SuperNode, one process per container.
#   predis-fl agent ...        (default)              cache node + sampler + agent, /metrics
#   flower-supernode ...       (entrypoint override)  joins the federation over TLS with the
#                                                     customer's P-384 key; runs our ClientApp
# Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t predis-agent:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/predis/venv
ENV PATH=/opt/predis/venv/bin:$PATH
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cache_core ./cache_core
COPY customer_models ./customer_models
COPY privacy ./privacy
COPY federation ./federation
COPY simulations ./simulations
RUN pip install . && predis-fl --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="predis-agent" \
      org.opencontainers.image.description="Predis Federation customer agent and SuperNode"
ENV PATH=/opt/predis/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 \
    FLWR_TELEMETRY_ENABLED=0 \
    FLWR_DISABLE_UPDATE_CHECK=1 \
    PREDIS_AGENT_STATE_DIR=/var/lib/predis-agent \
    PREDIS_AGENT_METRICS_PORT=9464
RUN groupadd --system --gid 10001 predis \
    && useradd --system --uid 10001 --gid predis --home-dir /home/predis --create-home predis \
    && install -d -o predis -g predis -m 0700 /var/lib/predis-agent
COPY --from=build /opt/predis/venv /opt/predis/venv
WORKDIR /var/lib/predis-agent
USER 10001:10001
VOLUME ["/var/lib/predis-agent"]
# 9464: the agent's /metrics
EXPOSE 9464
ENTRYPOINT ["predis-fl"]
# Mount the replayed trace (or, later, the live source) at /data; see deploy/README.md.
CMD ["agent", "--trace", "/data/trace", "--format", "lines"]
