"""Where a text file stops being UTF-8, as an editor would number the line.

The readers decode ahead in blocks, so the line they are on when decoding fails is not the line
of the bad byte; on that error path this scans the bytes themselves.
"""

from __future__ import annotations

from pathlib import Path

_BLOCK = 1 << 16


def first_non_utf8(path: str | Path) -> tuple[int, int, int] | None:
    """``(line, byte offset, byte value)`` of the first byte of ``path`` that is not UTF-8, or
    None. Lines end at LF, CRLF or a lone CR, as the readers count them."""
    base, line, carry, after_cr = 0, 1, b"", False
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            buffer = carry + block
            if not buffer:
                return None
            try:
                buffer.decode("utf-8")
                good, carry = len(buffer), b""
            except UnicodeDecodeError as exc:
                if exc.end == len(buffer) and block:  # a character cut by the block's end: finish it next time
                    good, carry = exc.start, buffer[exc.start:]
                else:
                    bad = exc.start
                    return line + _breaks(buffer[:bad], after_cr), base + bad, buffer[bad]
            part = buffer[:good]
            line += _breaks(part, after_cr)
            after_cr = part.endswith(b"\r") if part else after_cr
            base += good
            if not block:
                return None


def _breaks(data: bytes, after_cr: bool) -> int:
    """Line breaks in ``data``: LF, CRLF (one) and lone CR; ``after_cr``: the bytes before ended in CR."""
    count = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return count - (1 if after_cr and data.startswith(b"\n") else 0)


def not_utf8_message(path: str | Path) -> str:
    """The one line for a file that is not UTF-8 text: where, which byte, and the fix."""
    found = first_non_utf8(path)
    if found is None:  # pragma: no cover - only called after a decoding error
        return f"{path}: is not UTF-8 text; save the file as UTF-8"
    line, offset, value = found
    return (f"{path}: line {line} is not UTF-8 text (byte 0x{value:02x} at offset {offset}: saved as Latin-1 or "
            f"Windows-1252?); save the file as UTF-8")
