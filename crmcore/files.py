"""Files crmcore writes for a user: private (mode 0600), never through a
symbolic link, and complete or absent.

Exports, backups, rejects files and the demo hold personal data. Each is written
to a temporary file in the target's own directory (created 0600, so no other
account can read it even while it is written), flushed to disk and only then
given its name. An interrupted or failed write leaves no file at the target,
never a partial one, and never replaces or truncates a file the user already had
unless they asked for that.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from crmcore.errors import CRMError, ValidationError

PRIVATE_MODE = 0o600

try:  # advisory locks between the appender and the rewriter of one file (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - platforms without fcntl get no lock
    fcntl = None  # type: ignore[assignment]  # a module name, rebound to "no locks here"


def check_target(target: Path, what: str, *, replace: bool = False, hint: str = "") -> None:
    """Refuse a target that is a symbolic link, a directory, in a missing
    directory, or (unless ``replace``) an existing file; one line naming it
    (``hint`` is added to the "already exists" line, e.g. how to replace it)."""
    if target.is_symlink():
        raise ValidationError(
            f"{target}: is a symbolic link; give the {what} a path of its own (links are not followed)"
        )
    if target.is_dir():
        raise ValidationError(f"{target}: is a directory; give a file name for the {what}")
    if not target.parent.is_dir():
        raise ValidationError(f"{target.parent}: directory does not exist (for the {what})")
    if target.exists() and not replace:
        raise ValidationError(f"{target}: already exists; choose a new file for the {what}{hint}")


@contextlib.contextmanager
def private_output(
    target: str | Path, what: str, *, replace: bool = False, hint: str = ""
) -> Iterator[Path]:
    """Write ``target`` atomically as a private file.

    Yields the path of an empty temporary file (mode 0600) next to ``target``;
    the caller writes it (opening it for writing keeps the mode). When the block
    ends normally the file is synced and renamed to ``target``; when it raises,
    or the process is interrupted, the temporary file is removed and ``target``
    is untouched. Without ``replace`` an existing ``target`` is refused, also
    when it appears while the file is being written. An ``OSError`` (disk full,
    no permission) becomes a :class:`CRMError` naming the target.
    """
    target = Path(target)
    check_target(target, what, replace=replace, hint=hint)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as e:
        raise CRMError(f"{target}: cannot write the {what}: {e.strerror or e}") from None
    os.close(fd)  # mkstemp creates the file 0600
    temp = Path(name)
    try:
        yield temp
        _sync(temp)
        check_target(target, what, replace=replace, hint=hint)
        if replace:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)  # fails if the name was taken meanwhile: never clobbers
            except FileExistsError:
                raise ValidationError(
                    f"{target}: already exists; choose a new file for the {what}{hint}"
                ) from None
            except OSError:  # a file system without hard links: checked just above
                os.rename(temp, target)
            else:
                temp.unlink()
        _sync_dir(target.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        if isinstance(e, OSError):
            raise CRMError(f"{target}: cannot write the {what}: {e.strerror or e}") from None
        raise


def create_private(path: str | Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist (a new SQLite
    database file gets its mode before the first byte). Returns whether it did."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, PRIVATE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def append_private_line(path: str | Path, line: str) -> None:
    """Append one line to a private log file (created 0600), under a lock, so a
    concurrent :func:`rewrite_private_lines` loses nothing."""
    path = Path(path)
    if path.is_symlink():
        raise ValidationError(f"{path}: is a symbolic link; the log is not written through links")
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, PRIVATE_MODE)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            _lock(f.fileno())
            try:
                if not _same_file(f.fileno(), path):
                    continue  # rewritten and renamed while we waited: append to the new one
                f.write(line.rstrip("\n") + "\n")
                f.flush()
                return
            finally:
                _unlock(f.fileno())


def rewrite_private_lines(path: str | Path, change: Callable[[str], str | None]) -> int:
    """Replace each line of a log file by ``change(line)`` (None drops it),
    atomically and under the appenders' lock. Returns how many lines changed;
    a missing file changes nothing."""
    path = Path(path)
    if path.is_symlink():
        raise ValidationError(f"{path}: is a symbolic link; the log is not written through links")
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return 0
    with os.fdopen(fd, "r", encoding="utf-8", newline="") as src:
        _lock(src.fileno())
        try:
            changed = 0
            lines: list[str] = []
            for line in src:
                new = change(line.rstrip("\n"))
                if new != line.rstrip("\n"):
                    changed += 1
                if new is not None:
                    lines.append(new + "\n")
            if changed:
                with private_output(path, "log", replace=True) as temp:
                    temp.write_text("".join(lines), encoding="utf-8")
            return changed
        finally:
            _unlock(src.fileno())


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
