"""The control plane's servicers answer typed errors through the one mapping every Sluice server
shares (`core.grpc_errors`: `@map_errors`, `status_of`); this module keeps the name they import."""

from __future__ import annotations

from core.grpc_errors import STATUS_OF, map_errors, status_of

__all__ = ["STATUS_OF", "map_errors", "status_of"]
