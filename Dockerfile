# One image per process, each with only its extra from uv.lock:
#   docker build --target controlplane -t sluice-controlplane .
#   docker build --target agent -t sluice-agent .        (no store, scipy, scikit-learn or textual)
#   docker build --target cli -t sluice .                (the command and the TUI, for operators)
FROM python:3.11-slim AS base
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/sluice UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 PATH=/opt/sluice/bin:$PATH
COPY pyproject.toml uv.lock README.md ./

FROM base AS source
COPY protos protos
COPY core core
COPY runtime runtime
COPY controlplane controlplane
COPY agent agent
COPY tui tui
COPY sluice sluice
COPY cli cli
COPY migrations migrations

FROM source AS controlplane
RUN uv sync --locked --no-editable --no-cache --extra controlplane
ENTRYPOINT ["sluice"]

FROM source AS agent
RUN uv sync --locked --no-editable --no-cache --extra agent
ENTRYPOINT ["sluice"]

FROM source AS cli
RUN uv sync --locked --no-editable --no-cache --extra tui
ENTRYPOINT ["sluice"]
