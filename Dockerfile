# One image for every Sluice process: control plane, agents, CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos protos
COPY controlplane controlplane
COPY agent agent
COPY tui tui
COPY migrations migrations
RUN pip install --no-cache-dir .
ENTRYPOINT ["sluice"]
