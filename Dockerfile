# One image for every Sluice process: control plane, agents, CLI. Installs exactly uv.lock.
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/sluice UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 PATH=/opt/sluice/bin:$PATH
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-cache
COPY protos protos
COPY controlplane controlplane
COPY agent agent
COPY tui tui
COPY migrations migrations
RUN uv sync --locked --no-editable --no-cache
ENTRYPOINT ["sluice"]
