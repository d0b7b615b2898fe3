"""`Image` and `Audio`: binary content a tool can return without base64-encoding it by hand."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

from ..protocol import AudioContent, ImageContent


class _Media:
    _kind = "media"

    def __init__(
        self, data: bytes | None = None, *, path: str | Path | None = None, mime_type: str | None = None
    ) -> None:
        if (data is None) == (path is None):
            raise TypeError(f"{type(self).__name__}(): give exactly one of data= or path=")
        if path is not None:
            data = Path(path).read_bytes()
            mime_type = mime_type or mimetypes.guess_type(str(path))[0]
        if mime_type is None:
            raise TypeError(f"{type(self).__name__}(): mime_type is required when no path can tell it")
        assert data is not None
        self.data = bytes(data)
        self.mime_type = mime_type

    def _b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{len(self.data)} bytes>, mime_type={self.mime_type!r})"


class Image(_Media):
    """``Image(path="chart.png")`` or ``Image(png_bytes, mime_type="image/png")``, returned from a tool."""

    def to_content(self) -> ImageContent:
        return ImageContent(self._b64(), self.mime_type)


class Audio(_Media):
    """``Audio(path="hello.wav")`` or ``Audio(wav_bytes, mime_type="audio/wav")``, returned from a tool."""

    def to_content(self) -> AudioContent:
        return AudioContent(self._b64(), self.mime_type)
