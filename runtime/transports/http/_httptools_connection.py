"""One server connection on httptools, with the part of ``h11.Connection``'s surface ``_asgi_h11`` uses.

Why a look-alike: the connection loop in ``_asgi_h11`` (limits, pipelining, graceful stop, the
answers to bad requests) then runs unchanged on either parser, and every test of it runs on both.
Requests are read by ``_httptools_reader.RequestReader``; responses are framed here the way h11 frames
them (the same rules, ``h11._connection._clean_up_response_headers_for_sending``): Content-Length
when the app gave one, else chunked to an HTTP/1.1 client and close-delimited to an HTTP/1.0 one, no
body for HEAD, 204 and 304, ``Connection: close`` whenever the connection will close, and
``h11.LocalProtocolError`` for a body longer or shorter than its Content-Length. ``write_head``,
``write_data`` and ``write_end`` take the status, headers and bytes as they are (no h11 event objects,
whose construction re-validated every header in Python): each header name and value is checked here
against h11's own grammar (``h11._abnf``: a token, and a value of visible or obs-text bytes with inner
spaces and tabs, never CR, LF or NUL), so a header cannot be split or injected on either path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

import h11

from ._httptools_reader import RequestHead, RequestReader

_CLOSE = (b"connection", b"close")
#: h11's grammar for what it sends (``h11._abnf``): ``token`` and ``field_value``
_NAME: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE: Final = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_DIGITS: Final = re.compile(rb"[0-9]{1,20}")


class HttptoolsConnection:
    """The server side of one HTTP/1.1 connection: ``receive_data``/``next_event`` for the request,
    ``send`` for the response, ``start_next_cycle`` between them, ``their_state``/``our_state`` as
    h11 names them (IDLE, SEND_BODY, DONE, MUST_CLOSE, ERROR)."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        self._reader = RequestReader(max_incomplete_event_size)
        self._request: RequestHead | None = None
        self._their_state: Any = h11.IDLE
        self.our_state: Any = h11.IDLE
        self._keep_alive = True
        self._framing = 0  # 0: no body, 1: content-length, 2: chunked, 3: until close
        self._left = 0

    # -- the request --

    @property
    def trailing_data(self) -> tuple[bytearray, bool]:
        return self._reader.buffer, False

    @property
    def their_state(self) -> Any:
        return self._their_state

    def receive_data(self, data: bytes) -> None:
        self._reader.receive_data(data)

    def next_event(self) -> Any:
        try:
            event = self._reader.next_event()
        except h11.RemoteProtocolError:
            self._their_state = h11.ERROR
            self._keep_alive = False
            raise
        kind = type(event)
        if kind is RequestHead:
            self._request = event
            self._their_state = h11.SEND_BODY
            if not event.keep_alive:
                self._keep_alive = False
        elif kind is h11.EndOfMessage:
            self._their_state = h11.DONE if self._keep_alive else h11.MUST_CLOSE
            self._settle()
        return event

    def start_next_cycle(self) -> None:
        if self._their_state is not h11.DONE or self.our_state is not h11.DONE:
            raise h11.LocalProtocolError("not in a reusable state")
        self._reader.start_next_cycle()
        self._request = None
        self._their_state = self.our_state = h11.IDLE

    def _settle(self) -> None:
        """Both sides done: DONE only if the connection may carry another request (as h11 does)."""
        if not self._keep_alive:
            if self.our_state is h11.DONE:
                self.our_state = h11.MUST_CLOSE
            if self._their_state is h11.DONE:
                self._their_state = h11.MUST_CLOSE

    # -- the response --

    def send(self, event: Any) -> bytes:
        kind = type(event)
        if kind is h11.Data:
            return self.write_data(event.data)
        if kind is h11.EndOfMessage:
            return self.write_end()
        if kind is h11.Response:
            return self._write_head(event.status_code, event.headers.raw_items(), event.reason)
        raise h11.LocalProtocolError(f"cannot send {kind.__name__} here")

    def write_head(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The response head's bytes, after checking every header as ``h11.Response`` would."""
        checked = []
        for name, value in headers:
            if _NAME.fullmatch(name) is None:
                raise h11.LocalProtocolError(f"Illegal header name {name!r}")
            if _VALUE.fullmatch(value) is None:
                raise h11.LocalProtocolError(f"Illegal header value {value!r}")
            checked.append((name, value))
        if not 200 <= status <= 999:
            raise h11.LocalProtocolError("Response status_code should be in range [200, 999]")
        return self._write_head(status, checked, b"")

    def _write_head(self, status: int, headers: list[tuple[bytes, bytes]], reason: bytes) -> bytes:
        if self.our_state is not h11.IDLE:
            raise h11.LocalProtocolError("a response was already sent")
        request = self._request
        if request is None and self._their_state is not h11.ERROR:
            raise h11.LocalProtocolError("no request to answer")
        method = request.method if request is not None else b"GET"
        length: int | None = None
        chunked = False
        close = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                value = value.strip(b" \t")
                if _DIGITS.fullmatch(value) is None or (length is not None and int(value) != length):
                    raise h11.LocalProtocolError("bad Content-Length")
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = True
            elif lower == b"connection" and b"close" in value.lower():
                close = True
        if status in (204, 304) or method == b"HEAD":
            self._framing = 0
        elif chunked or length is None:
            old_client = request is None or request.http_version < b"1.1"
            framing = (b"content-length", b"transfer-encoding")
            headers = [(k, v) for k, v in headers if k.lower() not in framing]
            if old_client:
                self._framing = 3
                close = True
            else:
                headers.append((b"Transfer-Encoding", b"chunked"))
                self._framing = 2
        else:
            self._framing = 1
            self._left = length
        if close:
            self._keep_alive = False
        if not self._keep_alive:
            headers = [(k, v) for k, v in headers if k.lower() != b"connection"]
            headers.append(_CLOSE)
        self.our_state = h11.SEND_BODY
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
        lines.append(b"\r\n")
        return b"".join(lines)

    def write_data(self, data: bytes) -> bytes:
        if self.our_state is not h11.SEND_BODY:
            raise h11.LocalProtocolError("no response body is open")
        framing = self._framing
        if framing == 1:
            if len(data) > self._left:
                raise h11.LocalProtocolError("Too much data for declared Content-Length")
            self._left -= len(data)
            return data
        if framing == 2:
            return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        if framing == 3:
            return data
        if data:
            raise h11.LocalProtocolError("Too much data for declared Content-Length")
        return b""

    def write_end(self) -> bytes:
        if self.our_state is not h11.SEND_BODY:
            raise h11.LocalProtocolError("no response body is open")
        if self._framing == 1 and self._left:
            raise h11.LocalProtocolError("Too little data for declared Content-Length")
        self.our_state = h11.DONE if self._keep_alive and self._framing != 3 else h11.MUST_CLOSE
        if self.our_state is h11.MUST_CLOSE:
            self._keep_alive = False
        self._settle()
        return b"0\r\n\r\n" if self._framing == 2 else b""
