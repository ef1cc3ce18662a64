"""A 1:1 NAT in user space, for the media relay behind one (`media.public_address`).

Each port of a range on the public address is forwarded to the same port on the inner address, as a cloud
provider's 1:1 NAT (an elastic or floating IP) forwards to a VM's private address. The machine has no packet
filter to do it in the kernel, so a thread does it with sockets: a datagram from peer P to (public, N) goes to
(inner, N) from a socket of P's own mapping, bound on P's IP (the relay sees P's address with another port, as
behind P's own NAT; the IP is kept, as a 1:1 NAT keeps it), and what comes back to that socket goes out to P
from (public, N). Counters say how many datagrams crossed each way.

`forward_out` adds the other direction for one server (a STUN server, `media.stun_server`): the relay sends to a
port of the NAT's inner side, and the NAT sends it on to the server from (public, N) for the relay's port N, as a
1:1 NAT rewrites the source of what leaves the VM; the server's answers come back to the relay the same way."""
import selectors
import socket
import threading


class Nat:
    def __init__(self, public_ip: str, inner_ip: str, ports: range):
        self.public_ip, self.inner_ip = public_ip, inner_ip
        self.inbound = 0            # peer -> relay
        self.outbound = 0           # relay -> peer
        self._sel = selectors.DefaultSelector()
        self._mappings = {}         # (peer address, port) -> inner socket
        self._stop = threading.Event()
        self._public = {}
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((public_ip, port))
            s.setblocking(False)
            self._public[port] = s
            self._sel.register(s, selectors.EVENT_READ, ("public", port))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Nat":
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()

    def _inner(self, peer: tuple, port: int) -> socket.socket:
        s = self._mappings.get((peer, port))
        if s is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((peer[0], 0))
            s.setblocking(False)
            self._mappings[(peer, port)] = s
            self._sel.register(s, selectors.EVENT_READ, ("inner", (peer, port)))
        return s

    def forward_out(self, listen: tuple, server: tuple) -> "Nat":
        """Datagrams to LISTEN (the NAT's inner side) leave from (public, their source port) to SERVER."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(listen)
        s.setblocking(False)
        self._out_listen, self._out_server = s, server
        self._sel.register(s, selectors.EVENT_READ, ("out-inner", None))
        return self

    def _out_public(self, port: int) -> socket.socket:
        s = self._public.get(port)
        if s is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((self.public_ip, port))
            s.setblocking(False)
            self._public[port] = s
            self._sel.register(s, selectors.EVENT_READ, ("public", port))
        return s

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.1):
                side, what = key.data
                try:
                    data, src = key.fileobj.recvfrom(65536)
                except OSError:
                    continue
                if side == "out-inner":
                    if src[0] == self.inner_ip:
                        self._out_public(src[1]).sendto(data, self._out_server)
                        self.outbound += 1
                elif side == "public" and src == getattr(self, "_out_server", None):
                    self._out_listen.sendto(data, (self.inner_ip, what))   # the server's answer, back to the relay
                    self.inbound += 1
                elif side == "public":
                    self._inner(src, what).sendto(data, (self.inner_ip, what))
                    self.inbound += 1
                else:
                    peer, port = what
                    if src != (self.inner_ip, port):
                        continue    # only the mapped relay port answers through the mapping
                    self._public[port].sendto(data, peer)
                    self.outbound += 1
