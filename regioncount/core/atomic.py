"""Output files written whole or not at all: checked before the work, written to a temporary file in the
target folder, renamed into place only when complete.

A failure or an interrupt (Ctrl-C) at any point removes the temporary file and leaves whatever was at the
target before (a previous valid file stays intact).  ``os.replace`` is atomic on POSIX and Windows when
both names are in the same folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import RegionCountError


def check_output_path(path: str | Path, suffixes: Iterable[str] | None, what: str) -> Path:
    """Check, before any work, that ``path`` can be written: an allowed suffix (any when ``suffixes`` is
    None), an existing writable folder, not a folder itself.  Returns the path; raises
    :class:`RegionCountError` (one line)."""
    path = Path(path)
    if suffixes is not None:
        allowed = tuple(s.lower() for s in suffixes)
        if path.suffix.lower() not in allowed:
            raise RegionCountError(f"{path}: {what} must end in {' or '.join(allowed)}")
    if path.is_dir():
        raise RegionCountError(f"{path}: is a directory; {what} needs a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise RegionCountError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise RegionCountError(f"{path}: the folder {folder} is not writable")
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix); on success rename it onto ``path``.

    On any exception, KeyboardInterrupt included, the temporary file is removed and ``path`` is untouched.
    OSErrors become :class:`RegionCountError` naming ``path``.
    """
    path = Path(path)
    temp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        raise RegionCountError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
