"""Atomic writers: JSON, CSV, text; each writes a temporary file beside the target, then renames it."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import tempfile
from typing import Any, Iterable


def clean_json(obj: Any) -> Any:
    """Replace non-finite floats with None, recursively, so the JSON is standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(clean_json(obj), indent=indent, allow_nan=False)


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def writable_file_problem(path: str) -> str | None:
    """Why `path` cannot be written as a file initlab replaces, or None: a folder, a device, a pipe or a read-only
    file. A symbolic link is followed (its target is what gets written)."""
    target = os.path.realpath(path)
    try:
        st = os.stat(path)      # follows links, /proc's links to a descriptor too (a pipe's has no path to resolve)
    except FileNotFoundError:
        return None if not os.path.lexists(target) else "a path that leads to a file (a broken link)"
    except OSError as e:        # a loop of symbolic links, say
        return f"a path that leads to a file ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "a file path, not a folder"
    if not stat.S_ISREG(st.st_mode):
        return "a regular file (this is a device, a pipe or a socket)"
    if not os.access(target, os.W_OK) or not st.st_mode & 0o222:    # root passes access(): the mode says read-only
        return f"a file you can write to ({target} is read-only)"
    return None


class WriteError(OSError):
    """A file that could not be written, said in one line naming it (the file there before is kept); `strerror` is
    the system's reason alone, for a caller that names the file in its own words."""

    plain_message = True

    @classmethod
    def of(cls, path: str, e: OSError) -> "WriteError":
        err = cls(f"{path}: not written ({e.strerror or e}); {_kept(path)}")
        err.strerror = e.strerror       # errno stays unset: str() is the message above, not '[Errno n] ...'
        return err


def write_text(path: str, text: str) -> str:
    """Write text to path atomically: a temporary file in the same folder, fsync, then rename. A symbolic link is
    written through (its target is replaced, the link stays); a device, pipe or read-only file is refused."""
    problem = writable_file_problem(path)
    path = os.path.realpath(path)
    if problem:
        raise WriteError(f"{path}: not written: {problem}")
    folder = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as e:
        raise WriteError.of(path, e) from e
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would, or the old file's
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError.of(path, e) from e
        raise
    return path


def _kept(path: str) -> str:
    return "the file there is kept as it was" if os.path.exists(path) else "nothing was written"


def write_json(path: str, obj: Any) -> str:
    return write_text(path, dumps(obj, indent=1) + "\n")


def csv_text(rows: Iterable[dict[str, Any]], header: list[str] | None = None) -> str:
    """A header of every key the rows hold, in order of first appearance; with no rows, `header` alone (if given)."""
    rows = list(rows)
    buf = io.StringIO()
    if rows or header:
        names: list[str] = [] if rows else list(header or ())
        for r in rows:
            names.extend(k for k in r if k not in names)
        w = csv.DictWriter(buf, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_cell(v) for k, v in r.items()})
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    """A CSV cell: empty for a value that is missing; inf, -inf and nan as such (a reader parses them as floats),
    so that an infinite depth scale is not taken for one never computed."""
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else "inf" if v > 0 else "-inf"
    return clean_json(v)


def write_csv(path: str, rows: Iterable[dict[str, Any]], header: list[str] | None = None) -> str:
    return write_text(path, csv_text(rows, header))
