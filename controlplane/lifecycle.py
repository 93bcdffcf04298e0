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


async def wait_for_stop_signal() -> None:
    """Return on SIGTERM or SIGINT, so the caller can drain and stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
