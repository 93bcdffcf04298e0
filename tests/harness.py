"""Real servers and processes for tests: started on loopback, always stopped.

`ServerThread` runs a control plane in-process on its own event loop (fast, shared by many
tests); `SluiceProcess` runs `sluice ...` as a real child process (for kill/restart tests), on the
same process supervisor as `sluice demo` (`cli/demo/supervisor.py`). On Linux such a child dies
with the test process that started it (PR_SET_PDEATHSIG): a pytest worker killed by a timeout, an
OOM or a Ctrl-C-then-SIGKILL leaves no agent or control plane behind.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.demo.supervisor import Child, ChildExited, ChildNotReady, free_port
from controlplane.config import Config
from controlplane.server import ControlPlaneServer, ServerOptions
from tests.clirun import REPO, SLUICE
from tests.clirun import run_cli as run_cli  # re-exported: the tests import it from here
from tests.timing import scaled


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ServerThread:
    """A control plane on a background event loop; `address` is ready once constructed."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.server: ControlPlaneServer | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="controlplane", daemon=True)
        self._thread.start()
        if not self._ready.wait(scaled(60)):
            raise TimeoutError(f"control plane did not start within {scaled(60):g} s")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.server = ControlPlaneServer(self.options)
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.address

    @property
    def ctx(self) -> Any:
        assert self.server is not None
        return self.server.ctx

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a coroutine function on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(60)

    def stop(self) -> None:
        if self.server is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def start_server(
    tmp: Path, db_url: str | None = None, config: Config | None = None, **kw: Any
) -> ServerThread:
    options = ServerOptions(
        listen="127.0.0.1:0",
        db_url=db_url or f"sqlite:///{tmp / 'sluice.db'}",
        artifacts=tmp / "artifacts",
        config=config or Config(),
        metrics_port=0,
        **kw,
    )
    return ServerThread(options)


class SluiceProcess(Child):
    """`sluice ARGS` as a child process with its output in a log file; ready once constructed
    when `ready_pattern` is given (its match in `match`)."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        ready_pattern: str | None = None,
        timeout: float = 60.0,
        prefix: list[str] | None = None,
    ) -> None:
        self.args = args
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        argv = [*(prefix or []), *SLUICE, *args]  # prefix: e.g. `ip netns exec NS`
        # The death signal follows the thread that starts the child: tests start them on the
        # worker's main thread, which outlives every test.
        super().__init__(f"sluice {' '.join(args)}", argv, log, env=full_env, cwd=REPO, die_with_parent=True)
        self.match: re.Match[str] | None = None
        if ready_pattern:
            self.match = self.wait_for(ready_pattern, timeout)

    def wait_for(self, pattern: str, timeout: float = 60.0, what: str | None = None) -> re.Match[str]:
        """As `Child.wait_for` (the deadline scaled), with the end of the log in the error."""
        try:
            return super().wait_for(pattern, scaled(timeout), what)
        except (ChildExited, ChildNotReady) as exc:
            raise type(exc)(f"{exc}:\n{self.output()[-3000:]}") from None


def rss_mb(pid: int | None = None) -> float:
    """A process's resident memory (VmRSS) in MB; this process by default."""
    with open(f"/proc/{pid or os.getpid()}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI failed with one line on stderr that starts with 'error: ' (and no traceback)."""
    assert result.returncode != 0, result.stdout
    err = result.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# ---- TLS: certificates made with the openssl CLI (no `cryptography` dependency) ----

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


class Pki:
    """A throwaway CA in `directory` that issues leaf certificates for loopback servers and clients.

    Keys are P-256 (fast to make). Leaves carry serverAuth+clientAuth so one certificate can be an
    agent's server identity and its client identity towards the control plane.
    """

    def __init__(self, directory: Path, name: str = "sluice-test-ca") -> None:
        if OPENSSL is None:
            raise RuntimeError("the openssl CLI is not installed")
        self.dir = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = Cert(directory / f"{name}.pem", directory / f"{name}.key")
        self._openssl(
            "req", "-x509", *self._new_key(self.ca.key), "-out", str(self.ca.cert), "-days", "2", "-subj", f"/CN={name}"
        )

    @staticmethod
    def _new_key(key: Path) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key)]

    def _openssl(self, *args: str) -> None:
        assert OPENSSL is not None
        done = subprocess.run([OPENSSL, *args], capture_output=True, text=True, cwd=self.dir, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")

    def issue(self, name: str, sans: Sequence[str] = ("IP:127.0.0.1", "DNS:localhost")) -> Cert:
        leaf = Cert(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        csr, ext = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
        ext.write_text(
            f"subjectAltName={','.join(sans)}\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "basicConstraints=CA:FALSE\n"
        )
        self._openssl("req", *self._new_key(leaf.key), "-out", str(csr), "-subj", f"/CN={name}")
        self._openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert), "-CAkey", str(self.ca.key),
            "-CAcreateserial", "-out", str(leaf.cert), "-days", "2", "-extfile", str(ext),
        )  # fmt: skip
        return leaf


# ---- other "hosts": network namespaces joined by a veth pair ----

NETNS_PREFIX = "slft"
_NETNS_NAME = re.compile(rf"^{NETNS_PREFIX}-(\d+)-\d+$")
_VETH_NAME = re.compile(r"^sl[hn](\d+)x\d+$")
_netns_counter = 0


class NetnsUnavailable(Exception):
    """The machine does not let this test make a namespace (the reason is the message)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {result.stderr.strip() or result.returncode}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def remove_stale_netns() -> None:
    """Namespaces and veths of earlier test runs that died without cleaning up (their pid is gone)."""
    listed = _ip("netns", "list", check=False).stdout.split()
    for name in listed:
        found = _NETNS_NAME.match(name)
        if found and not _pid_alive(int(found.group(1))):
            _ip("netns", "del", name, check=False)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        found = _VETH_NAME.match(name)
        if found and not _pid_alive(int(found.group(1))):
            _ip("link", "del", name, check=False)


class NetNamespace:
    """A second host: namespace NAME with `ns_ip`, joined by a veth pair to this host's `host_ip`.

    `prefix` runs a command inside it; `cut()` / `restore()` take the host end of the link down
    and up (both directions stop: the namespace end loses its carrier). `remove()` is idempotent.
    """

    def __init__(self) -> None:
        global _netns_counter
        _netns_counter += 1
        pid, n = os.getpid(), _netns_counter
        self.name = f"{NETNS_PREFIX}-{pid}-{n}"
        self.host_if = f"slh{pid}x{n}"  # at most 15 characters
        self.ns_if = f"sln{pid}x{n}"
        self.host_ip, self.ns_ip = self._free_subnet(pid * 8 + n)
        self.created = False
        try:
            _ip("netns", "add", self.name)
            self.created = True
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _ip("-n", self.name, "link", "set", self.ns_if, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def _free_subnet(seed: int) -> tuple[str, str]:
        """A /30 in 10.231.0.0/16 that no interface of this host uses yet."""
        used = _ip("-o", "-4", "addr", "show", check=False).stdout
        for i in range(16384):
            block = (seed + i) % 16384
            base = f"10.231.{block // 64}.{(block % 64) * 4}"
            prefix = base.rsplit(".", 1)[0]
            last = (block % 64) * 4
            host, peer = f"{prefix}.{last + 1}", f"{prefix}.{last + 2}"
            if f" {host}/" not in used and f" {peer}/" not in used:
                return host, peer
        raise NetnsUnavailable("no free /30 in 10.231.0.0/16")

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_if, "up")

    def remove(self) -> None:
        _ip("link", "del", self.host_if, check=False)  # takes its peer with it
        if self.created:
            _ip("netns", "del", self.name, check=False)
            self.created = False


# ---- a private PostgreSQL server (never the shared system cluster) ----

PG_BIN = Path(os.environ.get("SLUICE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def postgres_unavailable() -> str | None:
    """Why a private PostgreSQL cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "createdb"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binaries not found ({PG_BIN / tool} is missing; set SLUICE_TEST_PG_BIN)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root needs `runuser` to start PostgreSQL as another user"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a `postgres` OS user (initdb refuses root)"
    return None


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory, on a free port; `stop()` / `start()` at will.

    As root every command runs as the `postgres` OS user, since initdb and postgres refuse root.
    `remove()` stops the server (immediate) and deletes its directory.
    """

    def __init__(self, database: str = "sluice") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.database = database
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            self.start()
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        except BaseException:
            self.remove()
            raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, tool: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{self.server_log()}")
        return result

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


CP_READY = r"sluice control plane listening on (\S+)"


def start_controlplane_process(
    root: Path,
    listen: str,
    log: str,
    *,
    db: str | None = None,
    config: str = "[agents]\nheartbeat_seconds = 0.5\nlost_after_missed = 3\n",
    env: dict[str, str] | None = None,
) -> SluiceProcess:
    """`sluice controlplane` as a child process (SQLite in ROOT unless `db`), ready when it returns.

    Restart it with the same ROOT and `listen` (and another `log`) to get the same database back.
    """
    (root / "cp.toml").write_text(config)
    args = [
        "controlplane",
        "--listen",
        listen,
        "--db",
        db or f"sqlite:///{root / 'cp.db'}",
        "--artifacts",
        str(root / "artifacts"),
        "--config",
        str(root / "cp.toml"),
        "--metrics-port",
        "0",
    ]
    return SluiceProcess(args, root / log, env=env, ready_pattern=CP_READY)


def bound_address(process: SluiceProcess) -> str:
    """The HOST:PORT a server child reported once listening: start it on port 0 and read the port
    here (no free-port probe handed over to a child that another process may take meanwhile), then
    pass this address to a restart of the same server."""
    assert process.match is not None, "started without a ready pattern"
    return process.match.group(1)
