"""Process lifecycle shared by the control plane and the agents."""

from __future__ import annotations

import asyncio
import signal


def split_listen_address(address: str) -> tuple[str, int]:
    """A server's --listen HOST:PORT as (host without brackets, port); ValueError says what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen {address!r} is not HOST:PORT with a port 0-65535 (e.g. 127.0.0.1:7400)")
    return host.strip("[]"), int(port)


def metrics_port_for(listen_port: int, metrics_port: int | None) -> int | None:
    """The Prometheus port of a server whose gRPC --listen port is `listen_port`.

    `metrics_port` as given: 0 turns /metrics off (None), any other number is used as it is.
    Not given (None): the port after the gRPC one (7400 -> 7401, 7510 -> 7511), so two agents on
    one host that differ only in --listen never collide; a gRPC port of 0 (any free one) gives
    0 here too, which the caller binds to any free port.
    """
    if metrics_port is not None:
        return metrics_port or None
    if listen_port == 0:
        return 0
    if listen_port == 65535:
        raise ValueError("--listen port 65535 leaves no port after it for /metrics: give --metrics-port")
    return listen_port + 1


async def wait_for_stop_signal() -> None:
    """Return on SIGTERM or SIGINT, so the caller can drain and stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
