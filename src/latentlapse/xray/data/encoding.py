"""Where a file stops being text: its first byte that is not UTF-8 (on the line an editor shows), or not text.

The readers decode ahead in blocks, so the line they are on when decoding fails is not the line
of the bad byte; on that error path this scans the bytes themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = 1 << 16
# Control bytes no text file holds (tab, line breaks, vertical tab and form feed are text).
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


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


def first_binary_byte(data: bytes) -> int | None:
    """Offset of the first byte of ``data`` that is not text: a control byte (NUL included) or
    one that is not UTF-8; None when every byte is text."""
    control = _CONTROL.search(data)
    end = control.start() if control else len(data)
    try:
        data[:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return control.start() if control else None


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
