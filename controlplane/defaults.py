"""The control plane's defaults, in a module light enough for `sluice --help` to import."""

DEFAULT_LISTEN = "127.0.0.1:7400"
DEFAULT_DB = "sqlite:///sluice-data/sluice.db"
DEFAULT_ARTIFACTS = "sluice-data/artifacts"
