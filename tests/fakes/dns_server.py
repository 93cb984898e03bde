"""FakeDnsServer: a real DNS server on 127.0.0.1 (UDP and TCP, one random port).

Role: the authoritative server for domain-verification tests. It parses and builds
messages with dnspython (RFC 1035 wire format, EDNS(0) per RFC 6891) and answers
from a mutable zone, so tests exercise the broker's real resolver code over real
sockets. Behaviour per name: TXT RRsets, NXDOMAIN (also for every unknown name),
SERVFAIL, or silence (a dropped query makes the client time out). A UDP answer
larger than the client's payload size is sent truncated (TC=1, RFC 1035 §4.2.1)
and the full answer is served over TCP (RFC 7766), as a real server does.

It runs in a background thread, so it serves sync tests and async tests alike
(the event loop under test is never blocked by the server).
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

Mode = Literal["records", "nxdomain", "servfail", "drop"]


@dataclass
class _Entry:
    mode: Mode
    txt: list[bytes | str] = field(default_factory=list)
    # Other RR types at the name, so that a TXT query gets NOERROR with no answer.
    other: dict[str, list[str]] = field(default_factory=dict)


class FakeDnsServer:
    """A loopback DNS server with a zone the test edits while it runs."""

    def __init__(self, host: str = "127.0.0.1", ttl: int = 60) -> None:
        if host != "127.0.0.1":
            raise ValueError("the fake DNS server listens on 127.0.0.1 only")
        self._host = host
        self._ttl = ttl
        self._zone: dict[dns.name.Name, _Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._port = 0
        self.queries: list[tuple[str, str, str]] = []  # (transport, qname, qtype) seen
        self.errors: list[Exception] = []  # bugs in the fake itself, raised by stop()

    # -- zone -----------------------------------------------------------------

    def set_txt(self, name: str, values: Sequence[bytes | str]) -> None:
        """Publish TXT records at `name`, one per value. A value may be a str (UTF-8,
        split into 255-octet strings) or bytes (same), as a zone file would hold it."""
        with self._lock:
            entry = self._zone.setdefault(_name(name), _Entry("records"))
            entry.mode = "records"
            entry.txt = list(values)

    def set_record(self, name: str, rdtype: str, values: Sequence[str]) -> None:
        """Publish records of another type (e.g. "A") at `name` (zone-file text form)."""
        with self._lock:
            entry = self._zone.setdefault(_name(name), _Entry("records"))
            entry.mode = "records"
            entry.other[rdtype.upper()] = list(values)

    def set_nxdomain(self, name: str) -> None:
        self._set_mode(name, "nxdomain")

    def set_servfail(self, name: str) -> None:
        self._set_mode(name, "servfail")

    def set_drop(self, name: str) -> None:
        """Never answer queries for `name`: the client runs into its timeout."""
        self._set_mode(name, "drop")

    def clear(self) -> None:
        with self._lock:
            self._zone.clear()
            self.queries.clear()

    def _set_mode(self, name: str, mode: Mode) -> None:
        with self._lock:
            self._zone[_name(name)] = _Entry(mode)

    # -- life cycle -----------------------------------------------------------

    @property
    def address(self) -> str:
        if not self._port:
            raise RuntimeError("server not started")
        return f"{self._host}:{self._port}"

    def start(self) -> FakeDnsServer:
        self._bind()
        self._thread = threading.Thread(target=self._serve, name="fake-dns", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        self._udp = self._tcp = None
        if self.errors:
            raise RuntimeError(f"fake DNS server failed: {self.errors!r}") from self.errors[0]

    def __enter__(self) -> FakeDnsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> None:
        # UDP and TCP must share one port number; retry if the TCP side is taken.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self._host, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((self._host, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            self._udp, self._tcp, self._port = udp, tcp, port
            return
        raise RuntimeError("no free port for UDP and TCP")

    def _serve(self) -> None:
        assert self._udp is not None and self._tcp is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._udp, selectors.EVENT_READ, "udp")
            selector.register(self._tcp, selectors.EVENT_READ, "listen")
            held: list[socket.socket] = []  # TCP connections of dropped queries
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    try:
                        if key.data == "udp":
                            self._serve_udp()
                        elif key.data == "listen":
                            conn, _ = self._tcp.accept()
                            selector.register(conn, selectors.EVENT_READ, "tcp")
                        else:
                            conn = key.fileobj  # type: ignore[assignment]
                            selector.unregister(conn)
                            if not self._serve_tcp(conn):
                                held.append(conn)
                    except Exception as exc:
                        # Keep serving; the failure surfaces when the test stops the server.
                        self.errors.append(exc)
            for conn in held:
                conn.close()

    def _serve_udp(self) -> None:
        assert self._udp is not None
        try:
            wire, peer = self._udp.recvfrom(65535)
        except OSError:
            return
        query = self._parse(wire, "udp")
        if query is None:
            return
        response = self._answer(query)
        if response is None:
            return
        limit = query.payload if query.edns >= 0 else 512
        try:
            out = response.to_wire(max_size=max(limit, 512))
        except dns.exception.TooBig:
            response.answer = []
            response.flags |= dns.flags.TC
            out = response.to_wire()
        self._udp.sendto(out, peer)

    def _serve_tcp(self, conn: socket.socket) -> bool:
        """Answer one length-prefixed query and close; False when the query is dropped."""
        conn.settimeout(2)
        try:
            size = int.from_bytes(_recv_exact(conn, 2), "big")
            query = self._parse(_recv_exact(conn, size), "tcp")
            if query is not None:
                response = self._answer(query)
                if response is None:
                    return False  # held open, never answered
                # Over TCP the whole answer fits (up to 64 KiB), whatever EDNS said.
                out = response.to_wire(max_size=65535)
                conn.sendall(len(out).to_bytes(2, "big") + out)
        except OSError:
            pass
        conn.close()
        return True

    # -- answers --------------------------------------------------------------

    def _parse(self, wire: bytes, transport: str) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.question:
            question = query.question[0]
            with self._lock:
                self.queries.append(
                    (transport, question.name.to_text(), dns.rdatatype.to_text(question.rdtype))
                )
        return query

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        with self._lock:
            entry = self._zone.get(question.name)
            snapshot = (
                None if entry is None else _Entry(entry.mode, list(entry.txt), dict(entry.other))
            )
        if snapshot is None or snapshot.mode == "nxdomain":
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif snapshot.mode == "servfail":
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.SERVFAIL)
        elif snapshot.mode == "drop":
            return None
        elif question.rdtype == dns.rdatatype.TXT and snapshot.txt:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, dns.rdatatype.TXT)
            for value in snapshot.txt:
                rrset.add(_txt_rdata(value), self._ttl)
            response.answer.append(rrset)
        else:
            rdtype_text = dns.rdatatype.to_text(question.rdtype)
            values = snapshot.other.get(rdtype_text)
            if values:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, self._ttl, "IN", rdtype_text, values)
                )
            # else NOERROR with an empty answer section: NODATA (RFC 2308 §2.2).
        return response


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text.rstrip(".") + ".")


def _txt_rdata(value: bytes | str) -> TXT:
    data = value.encode("utf-8") if isinstance(value, str) else value
    # RFC 1035 §3.3.14: each <character-string> holds at most 255 octets.
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data
