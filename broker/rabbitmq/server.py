"""Run a RabbitMQ node of our own: loopback only, its own ports, everything in one folder.

Used by the tests, the benchmarks and `sgx broker dev-server`. Needs Debian's rabbitmq-server
package (`apt-get install rabbitmq-server`); the node runs as a child process, without systemd.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from standard.errors import TransportUnavailable

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener: the server's certificate chain and key, and the CA that issued it."""

    certfile: Path
    keyfile: Path
    cafile: Path


@dataclass
class RabbitNode:
    """One RabbitMQ node in `base`; `start`, `stop`, `kill` (SIGKILL) and start again on the same data.

    With `tls`, the node also listens for amqps on `tls_port` (loopback), with that certificate and key.
    """

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    name: str = ""
    process: subprocess.Popen | None = None
    tls: TlsFiles | None = None
    tls_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.name = self.name or f"sgx{self.port}@localhost"
        info = {"port": self.port, "dist_port": self.dist_port, "epmd_port": self.epmd_port, "name": self.name}
        if self.tls:
            info |= {"tls_port": self.tls_port, "tls": {k: str(v) for k, v in vars(self.tls).items()}}
        (self.base / "node.json").write_text(json.dumps(info))
        (self.base / "enabled_plugins").write_text("[].\n")
        tls = "" if self.tls is None else (
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
            f"ssl_options.cacertfile = {self.tls.cafile}\n"
            f"ssl_options.certfile = {self.tls.certfile}\n"
            f"ssl_options.keyfile = {self.tls.keyfile}\n"
            # Clients are authenticated by password, not by certificate; TLS 1.2 or newer only.
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            "ssl_options.versions.1 = tlsv1.3\nssl_options.versions.2 = tlsv1.2\n")
        (self.base / "rabbitmq.conf").write_text(
            "loopback_users = none\n"
            "max_message_size = 5242880\n"  # broker/router.py MAX_BODY_BYTES: the ingress takes only what routes
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"{tls}"
            "log.console = false\nlog.file.level = warning\n")
        (self.base / "advanced.config").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")

    @property
    def env(self) -> dict[str, str]:
        b = str(self.base)
        return {**os.environ, "HOME": b, "RABBITMQ_NODENAME": self.name, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "ERL_EPMD_ADDRESS": "127.0.0.1", "ERL_EPMD_PORT": str(self.epmd_port),
                "RABBITMQ_MNESIA_BASE": f"{b}/mnesia", "RABBITMQ_LOG_BASE": f"{b}/log",
                "RABBITMQ_PID_FILE": f"{b}/rabbit.pid", "RABBITMQ_CONF_ENV_FILE": f"{b}/rabbitmq-env.conf",
                "RABBITMQ_CONFIG_FILE": f"{b}/rabbitmq", "RABBITMQ_ADVANCED_CONFIG_FILE": f"{b}/advanced.config",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{b}/enabled_plugins"}

    @classmethod
    def attach(cls, base: Path) -> RabbitNode:
        """The node whose folder is `base` (started earlier, e.g. by `sgx broker dev-server`)."""
        info = json.loads((base / "node.json").read_text())
        tls = TlsFiles(**{k: Path(v) for k, v in info["tls"].items()}) if "tls" in info else None
        return cls(base, info["port"], info["dist_port"], info["epmd_port"], info["name"], tls=tls,
                   tls_port=info.get("tls_port", 0))

    def ctl(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run([str(CTL), "-n", self.name, *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise TransportUnavailable(f"rabbitmqctl {args[0]} failed: {out.stderr.strip()[:400]}")
        return out.stdout

    def start(self, timeout: float = 90) -> None:
        if not SERVER.exists():
            raise TransportUnavailable("rabbitmq-server is not installed; run: apt-get install rabbitmq-server")
        log = open(self.base / "server.out", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen([str(SERVER)], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TransportUnavailable(f"RabbitMQ exited at start-up; see {self.base / 'server.out'}")
            try:
                self.ctl("await_startup", "--timeout", "5", timeout=15)
                return
            except (TransportUnavailable, subprocess.TimeoutExpired):
                time.sleep(0.5)
        raise TransportUnavailable(f"RabbitMQ did not start within {timeout} s; see {self.base / 'server.out'}")

    def kill(self) -> None:
        """SIGKILL the node (the beam process group), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(TransportUnavailable, subprocess.TimeoutExpired):
                self.ctl("stop", timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._stop_epmd()

    def _stop_epmd(self) -> None:
        # epmd daemonises and outlives the node; it is ours because it listens on our own port.
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env, capture_output=True,
                       timeout=10, check=False)

    def url(self, user: str = "guest", password: str = "guest", vhost: str = "%2F") -> str:  # noqa: S107 - RabbitMQ's
        # loopback-only default account of a fresh node; `sgx broker setup` deletes it.
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/{vhost}"

    def tls_url(self, user: str = "guest", password: str = "guest", vhost: str = "%2F", *,  # noqa: S107 - as url()
                cafile: Path | None = None, host: str = "127.0.0.1") -> str:
        """The amqps:// URL of the TLS listener, verifying the broker against `cafile` (default: its own CA)."""
        if self.tls is None:
            raise TransportUnavailable("this RabbitMQ node has no TLS listener; create it with tls=TlsFiles(...)")
        query = urlencode({"cafile": str(cafile or self.tls.cafile)})
        return f"amqps://{user}:{password}@{host}:{self.tls_port}/{vhost}?{query}"
