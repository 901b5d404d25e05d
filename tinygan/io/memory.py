"""How much memory a request may take: checked before allocating, refused in one line.

A large allocation that cannot be met either fails with a ``MemoryError`` deep inside NumPy
or, worse, succeeds lazily and gets the process killed once the pages are touched. Requests
whose size comes from the user (an option, a file's header) are measured first and compared
with the memory this process can still get: the least of every limit it runs under -- the
kernel's estimate of available memory, the cgroup (container) limit less what the group uses,
and the address-space limit (``ulimit -v``, ``RLIMIT_AS``) less what the process already maps.
This module imports nothing from tinygan.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import resource
except ImportError:  # not on every platform
    resource = None


def available_bytes() -> int | None:
    """Memory this process could still allocate, in bytes; ``None`` when the system does not say."""
    found = [n for n in (_meminfo_available(), _cgroup_headroom(), _address_space_headroom()) if n is not None]
    return min(found) if found else None


def describe_bytes(n: float) -> str:
    """``n`` bytes for a message: ``512 B``, ``3.2 MB``, ``1.5 GB``, ``2.0e+03 TB``."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 1e4 else f"{value:.1e} {unit}"
    return f"{int(n)} B"


def shortfall(nbytes: float, what: str = "memory") -> str | None:
    """Why ``nbytes`` of memory cannot be had (``"needs about …, more than the … available"``), or ``None``.

    ``what`` says what the memory is for. ``None`` too when the system does not report what
    is available: nothing is refused on a guess.
    """
    available = available_bytes()
    if available is None or nbytes <= available:
        return None
    return f"needs about {describe_bytes(nbytes)} of {what}, more than the {describe_bytes(available)} available"


def check_fits(nbytes: float, asked_by: str, error: type[Exception], what: str = "memory") -> None:
    """Raise ``error("<asked_by>: needs about …")`` when ``nbytes`` exceed the memory available.

    ``asked_by`` names the option or file that asks (``-n 1000000``).
    """
    problem = shortfall(nbytes, what)
    if problem:
        raise error(f"{asked_by}: {problem}")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_headroom() -> int | None:
    """This process's cgroup memory limit minus its current use (v2 or v1); ``None`` without a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, group = parts[1], parts[2]
        if controllers == "":  # v2: one unified hierarchy
            folder, files = Path("/sys/fs/cgroup") / group.lstrip("/"), ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / group.lstrip("/")
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        try:
            limit, used = ((folder / name).read_text().strip() for name in files)
            if limit != "max" and int(limit) < 2**60:  # v1 writes "no limit" as a huge number
                return max(int(limit) - int(used), 0)
        except (OSError, ValueError):
            continue
    return None


def _address_space_headroom() -> int | None:
    """``RLIMIT_AS`` (``ulimit -v``) less the address space this process maps now; ``None`` without a limit."""
    if resource is None:
        return None
    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        return None
    if limit == resource.RLIM_INFINITY or limit < 0:
        return None
    return max(limit - _mapped_bytes(), 0)


def _mapped_bytes() -> int:
    """The virtual memory this process maps (``VmSize``), which counts against ``RLIMIT_AS``; 0 when unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
