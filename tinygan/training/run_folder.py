"""Which folder a run may write into, one run at a time in each, and nothing left by a failed start.

* **Only run folders.** A run writes into a new folder, an empty one, or one that a tinygan run
  made, which holds the marker file :data:`MARKER`. A folder holding anything else (say, the
  user's own ``config.json``) is refused, never overwritten. Folders of runs made before the
  marker existed are known by their ``config.json``.
* **One run per folder.** The marker is also the lock: a run holds an exclusive advisory lock
  (``flock``) on it from setup to its last write, with its PID written inside, and a second
  process is refused with that PID. The OS drops the lock when the process ends, however it
  ends, so a killed run never leaves its folder locked.
* **No trace of a failed start.** :meth:`RunFolder.abandon` removes what this process made: the
  run's files when it started the run afresh, the marker, and the folders it created.
* **No links followed.** The marker is opened with ``O_NOFOLLOW``; the other files are replaced
  atomically or appended to through :func:`tinygan.io.files.open_for_append`.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..io.errors import UsageError
from ..io.files import open_regular

try:
    import fcntl
except ImportError:  # no advisory locks on this OS: runs are not protected from each other
    fcntl = None

MARKER = ".tinygan-run"
# Files a run folder holds; each is replaced atomically (through a ".<name>.*.tmp" file), but for
# metrics.jsonl, which grows by appends that never follow a link.
RUN_FILES = ("checkpoint.npz", "config.json", "samples.png", "eval.json", "metrics.jsonl", "reconstructions.png")


class RunFolder:
    """A run folder claimed by this process: locked until :meth:`release` (or the end of a ``with`` block).

    Make one with :meth:`claim`. ``fresh`` is whether a new run starts here (not a resume).
    """

    def __init__(self, path: Path, option: str, fresh: bool) -> None:
        self.path, self.option, self.fresh = path, option, fresh
        self.created: list[Path] = []  # folders this process made, deepest first
        self.made_marker = False
        self._fd: int | None = None

    @classmethod
    def claim(cls, path: Path, resuming: bool) -> RunFolder:
        """Check that ``path`` may hold this run, create it if needed, and lock it.

        Raises :class:`~tinygan.io.errors.UsageError` naming ``--out``/``--resume`` and the folder.
        """
        folder = cls(path, "--resume" if resuming else "--out", fresh=not resuming)
        folder._check()
        if folder.fresh:
            folder._create()
        try:
            folder._lock()
            folder._check()  # again, now that no other run can change it
            folder._probe()
            folder.clear()
        except BaseException:
            folder.abandon()
            raise
        return folder

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        """Unlock the folder (the OS would do it when the process ends anyway)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Undo a start that failed before training: remove what this process made, then unlock."""
        if self._fd is not None:  # only the holder of the lock touches the folder's files
            if self.fresh:
                self.clear()
            if self.made_marker:
                (self.path / MARKER).unlink(missing_ok=True)
        self.release()
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                break

    def clear(self) -> None:
        """Remove the run files, and temporary files left by a killed run (the files they were for are whole)."""
        for name in RUN_FILES:
            if self.fresh:
                (self.path / name).unlink(missing_ok=True)
            for stale in self.path.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)

    # -- claiming ---------------------------------------------------------------------------

    def _fail(self, problem: str) -> UsageError:
        return UsageError(f"{self.option} {self.path}: {problem}")

    def _check(self) -> None:
        """Refuse a folder this run may not write into."""
        path = self.path
        if not self.fresh:
            if not path.is_dir():
                raise self._fail("no such folder" if not path.exists() else "is not a folder")
            if not (path / MARKER).exists() and not (path / "config.json").exists():
                raise self._fail("no config.json there; is it a tinygan run folder?")
            return
        if not path.exists():
            return
        if not path.is_dir():
            raise self._fail("exists and is not a folder")
        names = sorted(os.listdir(path))
        if "checkpoint.npz" in names and (MARKER in names or "config.json" in names):
            raise self._fail(
                f"already holds a trained run; continue it with --resume {path} or choose another --out"
            )
        if names and MARKER not in names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise self._fail(
                f"is not empty and is not a tinygan run folder (it holds {shown}); choose a new or empty folder"
            )

    def _create(self) -> None:
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._fail(f"cannot write there ({e.strerror or e})") from None
        self.created = missing

    def _lock(self) -> None:
        marker = self.path / MARKER
        for _ in range(5):
            existed = os.path.lexists(marker)
            try:
                fd = open_regular(marker, os.O_RDWR | os.O_CREAT)
            except OSError as e:
                raise self._fail(f"cannot write there ({MARKER}: {e.strerror or e})") from None
            self.made_marker = self.made_marker or not existed
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    holder = _holder(fd)
                    os.close(fd)
                    self.made_marker = False
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise self._fail(f"cannot lock {MARKER} ({e.strerror or e})") from None
                    raise self._fail(
                        f"in use by another tinygan run ({holder}); one run at a time per folder"
                    ) from None
            if _same_file(fd, marker):  # not removed and made anew between the open and the lock
                self._fd = fd
                os.ftruncate(fd, 0)
                os.write(fd, f"tinygan run folder, locked by pid {os.getpid()}\n".encode())
                return
            os.close(fd)
        raise self._fail(f"{MARKER} keeps changing; is another program using this folder?")

    def _probe(self) -> None:
        """Prove the folder writable before any training time is spent (``O_EXCL``: never through a link)."""
        try:
            fd, name = tempfile.mkstemp(prefix=".write-test.", dir=self.path)
            os.close(fd)
            os.unlink(name)
        except OSError as e:
            raise self._fail(f"cannot write there ({e.strerror or e})") from None


def _holder(fd: int) -> str:
    try:
        found = re.search(rb"pid (\d+)", os.pread(fd, 200, 0))
    except OSError:
        found = None
    return f"PID {int(found.group(1))}" if found else "PID unknown"


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.lstat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
