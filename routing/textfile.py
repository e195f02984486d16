"""Reading the project's text files (flows, policies, rosters, scenarios, CSVs) as UTF-8.

It lives in ``routing``, the package every other one already imports, so that each loader
shares one reader and one message. A file saved as Windows-1252 or Latin-1, or a binary
file, gives a :class:`NotUTF8Error` that names the file, the byte offset and the fix,
instead of a bare ``UnicodeDecodeError``.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

__all__ = ["NotUTF8Error", "open_utf8_text", "read_utf8"]


class NotUTF8Error(ValueError):
    """A text file is not valid UTF-8; the message is one line for the person who saved it."""

    def __init__(self, path: Path | str, exc: UnicodeDecodeError) -> None:
        bad = exc.object[exc.start:exc.start + 1].hex()
        self.path = str(path)
        self.offset = exc.start
        super().__init__(
            f"{path}: not UTF-8 text (byte 0x{bad} at offset {exc.start}); "
            "UTF-8 is expected: save the file as UTF-8")


def read_utf8(path: Path | str) -> str:
    """The text of ``path`` (a UTF-8 byte-order mark is dropped). OSError passes through."""
    data = Path(path).read_bytes()
    try:
        return codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotUTF8Error(path, exc) from None


def open_utf8_text(path: Path | str) -> io.StringIO:
    """``read_utf8`` as a file object, for ``csv`` readers (newlines kept as written)."""
    return io.StringIO(read_utf8(path), newline="")
