"""Incremental decoders for the Engine's streamed bodies.

For containers without a TTY, logs and attached exec output arrive in Docker's
multiplexed format: frames of an 8-byte header (stream id, three zero bytes,
big-endian payload length) followed by the payload. HTTP chunks cut across
frames, and a log line can span frames (long lines are split into partial
messages), so both decoders here keep state between feeds. They are pure and
synchronous so tests can feed them bytes split at every possible position.
"""

from __future__ import annotations

from ._models import LogLine, StreamName
from ._wire import parse_time

__all__ = ["Demultiplexer", "LineAssembler", "stream_name"]

_HEADER = 8


def stream_name(stream_id: int) -> StreamName:
    """Map a frame's stream id to its name (2 is stderr, 3 the Engine's own errors)."""
    return "stderr" if stream_id in (2, 3) else "stdout"


class Demultiplexer:
    """Split a multiplexed byte stream into ``(stream id, payload)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add bytes; return every frame now complete, in order."""
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= _HEADER:
            size = int.from_bytes(self._buffer[4:_HEADER], "big")
            end = _HEADER + size
            if len(self._buffer) < end:
                break
            frames.append((self._buffer[0], bytes(self._buffer[_HEADER:end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back because their frame is not complete yet."""
        return len(self._buffer)


class LineAssembler:
    """Turn stream payloads into `LogLine`s, one per line, per stream.

    With ``timestamps``, the Engine prefixes every log message (one frame in
    the multiplexed format, one line in the raw TTY format) with an RFC 3339
    time and a space; the prefix is stripped and a line takes the time of the
    message it started in.
    """

    def __init__(self, *, timestamps: bool) -> None:
        self._timestamps = timestamps
        self._raw = False
        self._partial: dict[StreamName, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        # Stamp of the message in which each stream's unfinished line began.
        self._line_stamp: dict[StreamName, bytes] = {"stdout": b"", "stderr": b""}

    def feed_frame(self, stream: StreamName, payload: bytes) -> list[LogLine]:
        """Add one multiplexed frame's payload (one log message)."""
        stamp = b""
        if self._timestamps:
            stamp, payload = _split_stamp(payload)
        buffer = self._partial[stream]
        if not buffer:
            self._line_stamp[stream] = stamp
        buffer += payload
        lines: list[LogLine] = []
        while (newline := buffer.find(b"\n")) >= 0:
            lines.append(self._line(stream, bytes(buffer[:newline]), self._line_stamp[stream]))
            del buffer[: newline + 1]
            self._line_stamp[stream] = stamp
        return lines

    def feed_raw(self, data: bytes) -> list[LogLine]:
        """Add bytes of a raw (TTY) stream, which carries only stdout."""
        self._raw = True
        buffer = self._partial["stdout"]
        buffer += data
        lines: list[LogLine] = []
        while (newline := buffer.find(b"\n")) >= 0:
            lines.append(self._raw_line(bytes(buffer[:newline])))
            del buffer[: newline + 1]
        return lines

    def flush(self) -> list[LogLine]:
        """Emit what is left of unterminated lines once the stream has ended."""
        lines: list[LogLine] = []
        for stream, buffer in self._partial.items():
            if buffer:
                raw = bytes(buffer)
                buffer.clear()
                if self._raw:
                    lines.append(self._raw_line(raw))
                else:
                    lines.append(self._line(stream, raw, self._line_stamp[stream]))
        return lines

    def _raw_line(self, raw: bytes) -> LogLine:
        stamp = b""
        if self._timestamps:
            stamp, raw = _split_stamp(raw)
        return self._line("stdout", raw, stamp)

    @staticmethod
    def _line(stream: StreamName, raw: bytes, stamp: bytes) -> LogLine:
        if raw.endswith(b"\r"):  # TTY output ends lines with CRLF
            raw = raw[:-1]
        return LogLine(
            stream=stream,
            text=raw.decode("utf-8", errors="replace"),
            timestamp=parse_time(stamp.decode("ascii", errors="replace")) if stamp else None,
        )


def _split_stamp(data: bytes) -> tuple[bytes, bytes]:
    """Split ``b"<rfc3339> rest"`` into the stamp and the rest, if it has one."""
    space = data.find(b" ")
    if 0 < space <= 40 and parse_time(data[:space].decode("ascii", errors="replace")):
        return data[:space], data[space + 1 :]
    return b"", data
