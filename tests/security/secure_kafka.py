"""A secured Kafka on loopback for the TLS and SASL tests: certificates made at test time (openssl CLI),
stunnel in front of the embedded broker.

Why stunnel: Tansu 0.6.0's own ``--cert``/``--key`` do not work (the issue measured both refused together, and
either alone leaves the port speaking plaintext), so TLS is terminated by Debian's stunnel4 and Tansu
advertises the stunnel address (``--advertised-listener-url``). Every connection a client opens — the
bootstrap one and the ones metadata directs it to — therefore goes through TLS; the plaintext port is only
ever reached by stunnel.

SASL: Tansu 0.6.0 with ``--authentication`` is started by ``EmbeddedBroker(authentication=True)``; no login
can succeed on it (README, "Security (TLS and SASL)": its memory storage keeps no SCRAM credentials and it
offers no PLAIN), so the SASL tests prove the failure paths only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cpkmon.broker import EmbeddedBroker, free_port, stop_process_group

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


# -------------------------------------------------------------------------------------------- certificates
@dataclass(frozen=True)
class Pki:
    """PEM files of one test CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


OPENSSL = shutil.which("openssl")
_CA_CONF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_LEAF_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{san}
"""
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str | Path) -> None:
    assert OPENSSL, "openssl is not installed (apt-get install openssl)"
    res = subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"openssl {' '.join(map(str, args))}: {res.stderr}"


def _leaf(d: Path, name: str, cn: str, usage: str, san: str) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem", d / f"{name}.ext"
    _openssl("req", "-new", *_EC, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    ext.write_text(_LEAF_EXT.format(usage=usage, san=san))
    serial = "0x" + os.urandom(8).hex()
    _openssl("x509", "-req", "-in", csr, "-CA", d / "ca.pem", "-CAkey", d / "ca.key", "-set_serial", serial,
             "-days", "1", "-sha256", "-extfile", ext, "-out", cert)  # fmt: skip
    key.chmod(0o600)
    return cert, key


def make_pki(directory: Path, ca_cn: str = "cpkmon test CA") -> Pki:
    """A fresh CA with the openssl CLI (private keys live only in ``directory``, a pytest tmp dir: nothing
    is committed)."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "ca.cnf"
    conf.write_text(_CA_CONF.format(cn=ca_cn))
    _openssl("req", "-x509", "-config", conf, "-extensions", "v3_ca", *_EC, "-keyout", directory / "ca.key",
             "-out", directory / "ca.pem", "-days", "1", "-sha256")  # fmt: skip
    (directory / "ca.key").chmod(0o600)
    server_cert, server_key = _leaf(
        directory, "server", "localhost", "serverAuth", "subjectAltName = DNS:localhost, IP:127.0.0.1"
    )
    client_cert, client_key = _leaf(directory, "client", "cpkmon-client", "clientAuth", "")
    return Pki(directory / "ca.pem", server_cert, server_key, client_cert, client_key)


# ----------------------------------------------------------------------------------------------- stunnel
@dataclass
class Stunnel:
    """stunnel4 terminating TLS on ``127.0.0.1:port`` and forwarding to ``target`` (plaintext, loopback)."""

    target: int
    pki: Pki
    directory: Path
    require_client_cert: bool = False
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.directory / "stunnel.log"

    def start(self, timeout: float = 10.0) -> Stunnel:
        assert STUNNEL, "stunnel4 is not installed (apt-get install stunnel4)"
        self.port = self.port or free_port()
        conf = self.directory / "stunnel.conf"
        lines = [
            "foreground = yes",
            "pid =",
            f"output = {self.log}",
            "debug = 5",
            "[kafka]",
            f"accept = 127.0.0.1:{self.port}",
            f"connect = 127.0.0.1:{self.target}",
            f"cert = {self.pki.server_cert}",
            f"key = {self.pki.server_key}",
        ]
        if self.require_client_cert:
            # verifyChain: a client must present a certificate that chains to our CA, else no handshake
            lines += [f"CAfile = {self.pki.ca}", "verifyChain = yes", "requireCert = yes"]
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [STUNNEL, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stunnel exited {self.process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"stunnel did not listen on {self.port}: {self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_process_group(proc)


@contextlib.contextmanager
def tls_broker(directory: Path, pki: Pki, require_client_cert: bool = False) -> Iterator[Stunnel]:
    """Tansu on a plaintext loopback port advertising the stunnel address, and stunnel in front of it."""
    tls_port = free_port()
    broker = EmbeddedBroker(advertised_port=tls_port).start()
    tunnel = Stunnel(broker.port, pki, directory, require_client_cert, port=tls_port)
    try:
        tunnel.start()
        yield tunnel
    finally:
        tunnel.stop()
        broker.stop()
