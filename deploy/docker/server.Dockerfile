# syntax=docker/dockerfile:1
# Central side of Predis Federation: one image for the three central processes.
#   flower-superlink   (entrypoint override)  Fleet, Control and Runtime APIs on one TLS port
#   flower-superexec   (entrypoint override)  the ServerApp runner (SuperLink --isolation process)
#   predis-fl api serve (default command)     registry and adoption API, /metrics
# The Flower app itself (pyproject.toml + packages) is in /app, so `flwr run /app NAME` works
# from this image too. Build from the repository root:
#   docker build -f deploy/docker/server.Dockerfile -t predis-server:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# CPU-only torch: the default index resolves to a multi-GB CUDA build (see pyproject.toml).
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
LABEL org.opencontainers.image.title="predis-server" \
      org.opencontainers.image.description="Predis Federation: SuperLink, ServerApp runner, registry API"
# Flower must not build environments (uv sync), phone home or check for updates at run time.
ENV PATH=/opt/predis/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 \
    FLWR_TELEMETRY_ENABLED=0 \
    FLWR_DISABLE_UPDATE_CHECK=1 \
    FLWR_HOME=/home/predis/.flwr \
    PREDIS_API_HOST=0.0.0.0 \
    PREDIS_API_PORT=8080
RUN groupadd --system --gid 10001 predis \
    && useradd --system --uid 10001 --gid predis --home-dir /home/predis --create-home predis \
    && install -d -o predis -g predis -m 0700 /home/predis/.flwr /var/lib/predis /var/lib/flwr
COPY --from=build /opt/predis/venv /opt/predis/venv
COPY --from=build /src /app
WORKDIR /app
USER 10001:10001
# 9093: SuperLink (TLS); 8080: registry API and /metrics
EXPOSE 9093 8080
ENTRYPOINT ["predis-fl"]
CMD ["api", "serve", "--host", "0.0.0.0", "--port", "8080"]
