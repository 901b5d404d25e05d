"""IDX files, the format of MNIST and Fashion-MNIST: parse, read and write, raw or gzipped.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of dimensions), one
big-endian 4-byte size per dimension, then the values. Files come from the network or a
user's folder, so every size is checked against what the header declares before anything
is allocated, and gzip data is decompressed only as far as the header says it should go.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from ..io.errors import DataError
from ..io.files import atomic_write_bytes

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
# Longest possible IDX header: magic (4 bytes) + 255 dimensions of 4 bytes.
_IDX_MAX_HEADER = 4 + 4 * 255
# Bytes of gzip output inflated (and thrown away) at most to tell a damaged stream from a valid one
# that disagrees with its header: damage shows within a block (at most a few hundred kB) or at the
# end, in the CRC; a longer valid stream is reported as longer than declared without its end seen.
_VERIFY_LIMIT = 64 * 2**20


def _gunzip(data: bytes, limit: int, name: str) -> bytes:
    """Decompress gzip ``data`` but stop after ``limit + 1`` output bytes.

    The cap means a corrupt or hostile file can never make us allocate more than what its
    header promises (plus one byte, enough to notice that the file is too long).
    """
    out = bytearray()
    pending = data
    while True:
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            while True:
                # max_length must fit a C ssize_t even when a header declares absurd sizes.
                budget = min(limit + 1 - len(out), sys.maxsize)
                out += decomp.decompress(pending, budget)
                if len(out) > limit or decomp.eof:
                    break
                pending = decomp.unconsumed_tail
                if not pending:
                    raise DataError(f"{name}: truncated gzip data (unexpected end of file)")
        except zlib.error as exc:
            raise DataError(f"{name}: corrupt gzip data ({exc})") from None
        if len(out) > limit:
            return bytes(out)
        pending = decomp.unused_data
        # Concatenated gzip members are legal; trailing zero padding is tolerated like gzip(1).
        if not pending.startswith(_GZIP_MAGIC):
            if pending.strip(b"\0"):
                raise DataError(f"{name}: corrupt gzip data (trailing garbage)")
            return bytes(out)


def _parse_idx_header(head: bytes, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(head)} bytes, header needs 4)")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic bytes {head[:4].hex()})")
    code, ndim = head[2], head[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataError(f"{name}: truncated IDX header ({ndim} dimensions declared)")
    shape = struct.unpack(f">{ndim}I", head[4:header_len])
    return _IDX_DTYPES[code], shape, header_len


def _describe_shape(shape: tuple[int, ...]) -> str:
    """Shape for error messages, abbreviated when a corrupt header declares many dimensions."""
    if len(shape) <= 4:
        return f"shape {shape}"
    return f"a {len(shape)}-D shape ({shape[0]}, {shape[1]}, ...)"


def _describe_bytes(n: int) -> str:
    return f"{n} bytes" if n < 10**15 else "more than 10**15 bytes"


def _check_gzip_stream(data: bytes, name: str) -> None:
    """Raise DataError if the gzip stream is damaged, inflating at most ``_VERIFY_LIMIT`` bytes (thrown away).

    Called before reporting a header or size that does not fit, which damage can cause too.
    """
    decomp, seen = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
    pending = data
    try:
        while pending and not decomp.eof and seen <= _VERIFY_LIMIT:
            seen += len(decomp.decompress(pending, 2**20))
            pending = decomp.unconsumed_tail
    except zlib.error as exc:
        raise DataError(f"{name}: corrupt gzip data ({exc})") from None
    if not decomp.eof and seen <= _VERIFY_LIMIT:
        raise DataError(f"{name}: truncated gzip data (unexpected end of file)")


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse raw or gzip-compressed IDX bytes; every problem raises DataError naming ``name``."""
    if not data.startswith(_GZIP_MAGIC):
        return _parse_payload(data, name)
    try:
        dtype, shape, header_len = _parse_idx_header(_gunzip(data, _IDX_MAX_HEADER, name), name)
        expected = header_len + math.prod(shape) * dtype.itemsize
        return _parse_payload(_gunzip(data, expected, name), name)
    except DataError:
        _check_gzip_stream(data, name)  # a damaged stream is reported as such, not as a bad header or size
        raise


def _parse_payload(data: bytes, name: str) -> np.ndarray:
    """The array of raw IDX bytes (gzip input inflated at most one byte past its declared size)."""
    dtype, shape, header_len = _parse_idx_header(data, name)
    expected = header_len + math.prod(shape) * dtype.itemsize
    # Compare declared and actual sizes before touching the payload, so a bogus header can
    # never trigger a huge allocation.
    if len(data) != expected:
        if len(data) < expected:
            problem, actual = "truncated IDX file", f"only {len(data)} bytes are present"
        else:  # for gzip input only expected + 1 bytes were decompressed, so say "more"
            problem, actual = "IDX file too long", "the file holds more"
        raise DataError(
            f"{name}: {problem} (header declares {_describe_shape(shape)}, "
            f"needing {_describe_bytes(expected)}; {actual})"
        )
    flat = np.frombuffer(data, dtype=dtype, offset=header_len)
    try:
        array = flat.reshape(shape)
    except ValueError:  # an empty shape like (0, 2**32-1, 2**32-1) numpy cannot represent
        raise DataError(
            f"{name}: IDX header declares an unsupported {_describe_shape(shape)}"
        ) from None
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or .gz, detected from content) into a native-endian array."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from None
    return parse_idx(data, str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise an array as raw IDX bytes (dtype must be one IDX supports)."""
    arr = np.asarray(array)
    code = _IDX_CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"write_idx: dtype {arr.dtype} has no IDX type code")
    if not 1 <= arr.ndim <= 255:
        raise DataError(f"write_idx: array must have 1..255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(_IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file; gzip-compressed when the path ends in .gz."""
    data = idx_bytes(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
