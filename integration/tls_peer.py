"""SIP over TLS peers for test_tls.py, on Python's ssl module (OpenSSL), written apart from stox's
rustls code: a client that sends one request over TLS and reads the final response, and a UAS that
answers MESSAGEs over TLS. Certificates come from the openssl CLI, made at test time.

Layout of a certificate directory (certs(dir)):
  ca.crt / ca.key        a private CA (basicConstraints CA:TRUE)
  gw.crt / gw.key        the gateway's listener certificate, IP:127.0.0.1, signed by the CA
  peer.crt / peer.key    the TLS UAS's certificate, IP:127.0.0.1, signed by the CA
"""
from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from sip_helper import SipMessage, build_request, parse_sip


def _openssl(*args: str, cwd: Path) -> None:
    p = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        pytest.fail("openssl %s failed:\n%s" % (" ".join(args), p.stdout.decode(errors="replace")),
                    pytrace=False)


def issue(dir: Path, stem: str) -> None:
    """A key and a certificate for IP 127.0.0.1 (and DNS localhost) signed by dir/ca.*."""
    ext = dir / ("%s.ext" % stem)
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n"
                   "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth, clientAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "%s.key" % stem, "-out", "%s.csr" % stem, "-subj", "/CN=%s.stox-it" % stem, cwd=dir)
    _openssl("x509", "-req", "-in", "%s.csr" % stem, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", "%s.crt" % stem, "-extfile", ext.name, cwd=dir)


def certs(dir: Path) -> Path:
    """Make the CA and the gw/peer certificates under dir once; returns dir."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (needed to make the test certificates): apt-get install openssl",
                    pytrace=False)
    dir.mkdir(parents=True, exist_ok=True)
    if not (dir / "ca.crt").exists():
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=stox-it test CA", cwd=dir)
    for stem in ("gw", "peer"):
        if not (dir / ("%s.crt" % stem)).exists():
            issue(dir, stem)
    return dir


def fingerprint_pem(path: Path) -> str:
    """SHA-256 of a PEM certificate, as stox logs it (AB:CD:...)."""
    der = ssl.PEM_cert_to_DER_cert(Path(path).read_text())
    return fingerprint_der(der)


def fingerprint_der(der: bytes) -> str:
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def client_context(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = True
    return ctx


class TlsClient:
    """One TLS connection to the gateway's listener (server certificate verified against the CA)."""

    def __init__(self, ca: Path, port: int, host: str = "127.0.0.1", timeout: float = 10):
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = client_context(ca).wrap_socket(raw, server_hostname=host)
        self.local_port = self.sock.getsockname()[1]
        self.peer_fingerprint = fingerprint_der(self.sock.getpeercert(binary_form=True))
        self.buf = b""

    def transact(self, method: str, ruri: str, timeout: float = 10, **kw) -> Optional[SipMessage]:
        """Send a request (Via SIP/2.0/TLS) and return its final response, or None on timeout/close."""
        self.sock.sendall(build_request(method, ruri, transport="TLS", local_port=self.local_port, **kw))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self._take()
            if msg is not None:
                if msg.is_response and msg.status >= 200:
                    return msg
                continue
            self.sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                data = self.sock.recv(65535)
            except (socket.timeout, ssl.SSLError):
                continue
            if not data:
                return None
            self.buf += data
        return None

    def _take(self) -> Optional[SipMessage]:
        while self.buf.startswith(b"\r\n"):      # keep-alive CRLFs
            self.buf = self.buf[2:]
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value.strip() or 0)
        if len(rest) < length:
            return None
        raw = head + sep + rest[:length]
        self.buf = rest[length:]
        return parse_sip(raw)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class TlsUas:
    """A SIP UAS over TLS (its own certificate) answering every MESSAGE with 200; keeps what it got."""

    def __init__(self, cert_dir: Path, port: int):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert_dir / "peer.crt"), str(cert_dir / "peer.key"))
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.listener.settimeout(0.2)
        self.requests: list[SipMessage] = []
        self.handshake_errors: list[str] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "TlsUas":
        self.thread.start()
        return self

    def _run(self):
        while not self.stopping:
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket):
        try:
            raw.settimeout(10)
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.handshake_errors.append(str(e))
            raw.close()
            return
        client = TlsClient.__new__(TlsClient)
        client.sock, client.buf = s, b""
        try:
            while not self.stopping:
                msg = client._take()
                if msg is None:
                    try:
                        data = s.recv(65535)
                    except (socket.timeout, ssl.SSLError, OSError):
                        if self.stopping:
                            break
                        continue
                    if not data:
                        break
                    client.buf += data
                    continue
                if msg.is_response:
                    continue
                self.requests.append(msg)
                s.sendall(response(msg, 200, "OK"))
        finally:
            s.close()

    def wait_request(self, pred, timeout: float = 10) -> SipMessage:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in self.requests:
                if pred(m):
                    return m
            time.sleep(0.05)
        pytest.fail("the TLS UAS got no matching request within %ss (got %d request(s), handshake errors %r)"
                    % (timeout, len(self.requests), self.handshake_errors), pytrace=False)

    def stop(self):
        self.stopping = True
        self.listener.close()
        self.thread.join(2)


def response(req: SipMessage, code: int, reason: str) -> bytes:
    """A response to `req` with its Via, From, To (plus a tag), Call-ID and CSeq."""
    lines = ["SIP/2.0 %d %s" % (code, reason)]
    for name in ("via", "from", "to", "call-id", "cseq"):
        for value in req.get_all(name):
            if name == "to" and "tag=" not in value:
                value += ";tag=tlsuas"
            lines.append("%s: %s" % (name.title(), value))
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class BaresipTls:
    """baresip 1.0 over TLS, started directly (the kit's start.sh has no TLS settings): its own config
    with sip_certificate (a certificate for 127.0.0.1 from the run's CA) and sip_cafile, listening on
    SIP_PORT (udp/tcp) and SIP_PORT+1 (TLS), no registration, stox's TLS listener as its outbound
    proxy, and sip:alice@localhost as its current contact ('message TEXT' goes there)."""

    def __init__(self, kit, cert_dir: Path, user: str, sip_port: int, ctrl_port: int, gw_tls_port: int,
                 contact: str):
        if shutil.which("baresip") is None:
            pytest.fail("baresip is not installed: run ../shared/peers/install.sh baresip", pytrace=False)
        self.kit, self.user, self.ctrl_port = kit, user, ctrl_port
        self.dir = kit.run / ("baresip-tls-" + user)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "baresip.log"
        issue(cert_dir, user)
        pem = self.dir / "cert.pem"       # baresip wants the certificate and its key in one file
        pem.write_text((cert_dir / ("%s.crt" % user)).read_text() + (cert_dir / ("%s.key" % user)).read_text())
        (self.dir / "config").write_text("\n".join([
            "poll_method epoll",
            "sip_listen 127.0.0.1:%d" % sip_port,
            "sip_certificate %s" % pem,
            "sip_cafile %s" % (cert_dir / "ca.crt"),
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module stdio.so",
            "module_tmp account.so",
            "module_app contact.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            "ctrl_tcp_listen 127.0.0.1:%d" % ctrl_port,
            ""]))
        (self.dir / "accounts").write_text(
            '<sip:%s@127.0.0.1;transport=tls>;regint=0;medianat=;mwi=no;'
            'outbound="sip:127.0.0.1:%d;transport=tls;lr"\n' % (user, gw_tls_port))
        (self.dir / "contacts").write_text('"peer" <%s>\n' % contact)
        self.proc = None
        self.fifo_fd = None

    def start(self) -> "BaresipTls":
        import os
        fifo = self.dir / "stdin"
        if fifo.exists():
            fifo.unlink()
        os.mkfifo(fifo)
        # read-write: the FIFO never sees EOF while we hold it (baresip's stdio needs a FIFO)
        self.fifo_fd = os.open(fifo, os.O_RDWR)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir), *getattr(self, "extra_args", [])],
                                     stdin=self.fifo_fd, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail("baresip (TLS) exited at start:\n%s" % self.log_text()[-3000:], pytrace=False)
            if "baresip is ready" in self.log_text():
                try:
                    socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.5).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.2)
        pytest.fail("baresip (TLS) not ready within 15 s:\n%s" % self.log_text()[-3000:], pytrace=False)

    def ctrl(self, *commands: str, listen: float = 1.0) -> str:
        import sys
        p = subprocess.run([sys.executable, str(self.kit.peers / "scripts" / "baresip_ctrl.py"),
                            str(self.ctrl_port), *commands, "--listen", str(listen)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return p.stdout.decode(errors="replace")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, text: str, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log_text():
                return
            time.sleep(0.1)
        pytest.fail("baresip (TLS) never logged %r; log tail:\n%s" % (text, self.log_text()[-3000:]),
                    pytrace=False)

    def stop(self):
        import os
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None
