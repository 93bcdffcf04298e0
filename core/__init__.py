"""What every Sluice process shares, light enough for an agent host: numpy, grpcio and protobuf.

Typed errors and their gRPC status codes, names, TLS, process lifecycle, request decoding, the
/metrics endpoint, the mergeable summaries agents send (latency sketch, moments, reservoir) and
the control plane's client used by the CLI and the TUI. Nothing here imports `controlplane`,
`agent`, `tui` or the CLI (import-linter checks it in `make lint`).
"""
