"""Request parsing on httptools (llhttp, in C): bytes in, request heads, body chunks and ends out.

Why: h11 validates every request head in Python (about 30 regex checks and several event objects per
request), 13-20% of our HTTP server's CPU per ``tools/call`` (benchmarks/README.md, "httptools").
llhttp does the same checks in C. This module gives ``_asgi_h11``'s connection loop the events it
already knows (a head, ``h11.Data``, ``h11.EndOfMessage``, ``h11.NEED_DATA``, and
``h11.RemoteProtocolError`` with the status to answer), so the loop, its limits and its tests are the
same on both parsers.

What llhttp does not give, done here:

- **byte exactness.** llhttp has no pause (in httptools) and no offsets, so it is never fed past the
  end of the message it parses: the head is cut at its blank line here (the same search h11 does, so
  ``max_header_bytes`` counts the same bytes and is exact), a Content-Length body is sliced here, and a
  chunked body is fed up to each LF in turn (a chunked message can only end on an LF), so the bytes of
  a pipelined next request stay in the buffer, counted against the loop's pipelining bound.
- **h11's rules where llhttp is more lenient**: exactly one ``Host`` on HTTP/1.1 (400), a
  Transfer-Encoding other than exactly ``chunked`` (501), whitespace around values stripped, a request
  target of visible ASCII only and single spaces in the request line, no blank lines before it,
  keep-alive only on HTTP/1.1 without ``Connection: close`` (h11 never keeps an HTTP/1.0 connection).

Where llhttp is stricter than h11 (answered 400 here, served by h11; tests/test_http_parsers.py):
Content-Length together with Transfer-Encoding (h11 reads it as chunked and closes after the answer;
both are safe against smuggling), line ends without CR, obsolete line folding, methods llhttp does not
know, HTTP versions other than 0.9, 1.0, 1.1 and 2.0, and a repeated identical Content-Length.
"""

from __future__ import annotations

import re
from typing import Any, Final

import h11
import httptools

#: where a request head ends: the same search h11 does (its ``blank_line_regex``), so both parsers
#: count the same bytes against ``max_header_bytes``
_HEAD_END: Final = re.compile(b"\n\r?\n", re.MULTILINE)
#: a request target as h11 accepts it: visible ASCII, no spaces
_TARGET: Final = re.compile(rb"[\x21-\x7e]+")
_END: Final = h11.EndOfMessage()
_NEED_DATA: Final = h11.NEED_DATA

# reader states
_HEAD = 0
_LENGTH = 1
_CHUNKED = 2
_DONE = 3
_ERROR = 4


class RequestHead:
    """A parsed request head: what the connection loop and the ASGI scope need.

    ``headers`` are (lowercased name, value) pairs in the order sent; ``keep_alive`` is False when the
    connection must close after this request's answer (``Connection: close``, HTTP/1.0, an upgrade).
    """

    __slots__ = ("headers", "http_version", "keep_alive", "method", "target")

    def __init__(
        self, method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = True

    def __repr__(self) -> str:
        return f"RequestHead({self.method!r}, {self.target!r}, HTTP/{self.http_version.decode()})"


def _bad(message: str, status: int = 400) -> h11.RemoteProtocolError:
    return h11.RemoteProtocolError(message, error_status_hint=status)


class RequestReader:
    """One connection's request side: feed bytes with ``receive_data``, take events with ``next_event``.

    After a message ended (``EndOfMessage``), ``next_event`` returns ``h11.PAUSED`` until
    ``start_next_cycle``. A ``RemoteProtocolError`` leaves the reader in an error state for good.
    """

    def __init__(self, max_head_bytes: int) -> None:
        self.max_head_bytes = max_head_bytes
        self.buffer = bytearray()
        self.state = _HEAD
        self._searched = 0  # where the next search for a head's end starts
        self._left = 0  # bytes of a Content-Length body still to come
        self._parser: Any = None
        # filled by the parser's callbacks
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._complete = False
        self._head_done = False

    # -- httptools callbacks (called from C inside feed_data) --

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if value[-1:] in (b" ", b"\t"):  # llhttp keeps trailing whitespace; h11 strips it (OWS)
            value = value.rstrip(b" \t")
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # -- the reader --

    def receive_data(self, data: bytes) -> None:
        self.buffer += data

    def next_event(self) -> Any:
        state = self.state
        if state == _HEAD:
            return self._read_head()
        if state == _LENGTH:
            return self._read_length()
        if state == _CHUNKED:
            return self._read_chunked()
        if state == _DONE:
            return h11.PAUSED
        raise _bad("the connection is in an error state")

    def start_next_cycle(self) -> None:
        if self.state != _DONE:
            raise h11.LocalProtocolError("the request has not been read to its end")
        self.state = _HEAD
        self._searched = 0

    def _fail(self, message: str, status: int = 400) -> h11.RemoteProtocolError:
        self.state = _ERROR
        return _bad(message, status)

    def _read_head(self) -> Any:
        buffer = self.buffer
        if not buffer:
            return _NEED_DATA
        if buffer[0] < 0x21:  # h11's "obviously invalid request line" (blank lines before it included)
            raise self._fail("illegal request line")
        found = _HEAD_END.search(buffer, self._searched)
        if found is None:
            if len(buffer) > self.max_head_bytes:
                raise self._fail("request head too large", 431)
            self._searched = max(0, len(buffer) - 2)
            return _NEED_DATA
        size = found.end()
        if size > self.max_head_bytes:
            raise self._fail("request head too large", 431)
        head = bytes(buffer[:size])
        del buffer[:size]
        return self._parse_head(head)

    def _parse_head(self, head: bytes) -> RequestHead:
        self._url = b""
        self._headers = []
        self._complete = self._head_done = False
        parser = httptools.HttpRequestParser(self)
        upgrade = False
        refused: httptools.HttpParserError | None = None
        try:
            parser.feed_data(head)
        except httptools.HttpParserUpgrade:
            upgrade = True  # an Upgrade or CONNECT request: served as a plain one, then closed
        except httptools.HttpParserError as exc:
            # llhttp refuses some heads only once it has them whole (a Transfer-Encoding it does not
            # know): the checks below then pick the status h11 gives (501 there), else 400
            if not self._head_done:
                raise self._fail(f"bad request head: {exc}") from None
            refused = exc
        if not self._head_done:
            raise self._fail("incomplete request head")
        method = parser.get_method()
        url = self._url
        version = parser.get_http_version().encode()
        if not head.startswith(b"%s %s HTTP/" % (method, url)) or not _TARGET.fullmatch(url):
            raise self._fail("illegal request line")
        headers = self._headers
        self._headers = []  # a chunked body's trailer fields land here, never in the request's headers
        request = RequestHead(method, url, version, headers)
        hosts = 0
        chunked: list[bytes] | None = None
        length: bytes | None = None
        for name, value in headers:
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                chunked = [*(chunked or ()), *(v.strip(b" \t").lower() for v in value.split(b","))]
            elif name == b"content-length":
                length = value
            elif name == b"connection" and b"close" in (v.strip(b" \t").lower() for v in value.split(b",")):
                request.keep_alive = False
        if hosts > 1 or (hosts == 0 and version == b"1.1"):
            raise self._fail("a request needs exactly one Host header")
        if version != b"1.1" or upgrade:
            request.keep_alive = False
        if chunked is not None and chunked != [b"chunked"]:
            raise self._fail("only Transfer-Encoding: chunked is supported", 501)
        if refused is not None:
            raise self._fail(f"bad request head: {refused}")
        if chunked is not None:
            self._parser = parser
            self._body = []
            self.state = _CHUNKED
        elif length is not None and int(length) > 0:
            self._left = int(length)
            self.state = _LENGTH
        else:
            self.state = _LENGTH
            self._left = 0
        return request

    def _read_length(self) -> Any:
        left = self._left
        if not left:
            self.state = _DONE
            return _END
        buffer = self.buffer
        if not buffer:
            return _NEED_DATA
        if len(buffer) <= left:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:left])
            del buffer[:left]
        self._left = left - len(data)
        return h11.Data(data=data)

    def _read_chunked(self) -> Any:
        if self._complete:
            self.state = _DONE
            self._parser = None
            return _END
        buffer = self.buffer
        if not buffer:
            return _NEED_DATA
        # Fed up to each LF in turn: the message can only end on one, and llhttp must not see a byte
        # of what follows it (a pipelined request stays in the buffer).
        feed = self._parser.feed_data
        view = memoryview(buffer)
        start = 0
        end = len(buffer)
        try:
            while start < end and not self._complete:
                lf = buffer.find(b"\n", start)
                stop = end if lf < 0 else lf + 1
                feed(view[start:stop])
                start = stop
        except httptools.HttpParserError as exc:
            view.release()
            raise self._fail(f"bad chunked body: {exc}") from None
        view.release()
        del buffer[:start]
        body = self._body
        complete: bool = self._complete  # (set by the parser's callback during the feeds)
        if not body:
            if complete:
                self.state = _DONE
                self._parser = None
                return _END
            return _NEED_DATA
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        return h11.Data(data=data)
