# Copyright (c) OpenMMLab. All rights reserved.
"""A small, fast writer of MATLAB level-5 MAT files.

It writes the subset of the format the person-search annotation files use
(double matrices, char strings, cell arrays and struct arrays) and produces
**the same bytes as** :func:`scipy.io.savemat` (default options:
``format='5'``, ``oned_as='row'``, ``long_field_names=False``), except for the
creation time in the 116-byte text header, which is fixed here so that files
are reproducible. The test suite checks the byte equality against scipy.

Why not :func:`scipy.io.savemat` itself: it costs ~100 µs per struct element,
so the real-size CUHK-SYSU protocol files (2,900 queries × up to 4,000 gallery
entries, 22 million elements over the six ``TestG`` files) would take tens of
minutes. Here leaves are encoded once and reused (:func:`encode` results are
plain ``bytes``), and large variables can be streamed
(:func:`write_mat_stream`).

Values accepted by :func:`encode` (as :func:`scipy.io.savemat` maps them):

* ``str`` (non-empty, ASCII) -> 1×n char array;
* ``float`` / ``int`` / NumPy real scalar -> 1×1 double;
* NumPy numeric array, 0-d or 2-D -> double matrix (converted to float64);
* NumPy structured array (object fields), 2-D -> struct array;
* NumPy object array, 2-D -> cell array.
"""
import struct
import zlib
from typing import Iterable, List, Sequence

import numpy as np

__all__ = [
    'FILE_HEADER', 'encode', 'encode_char', 'encode_double', 'encode_row',
    'matrix', 'matrix_prefix', 'struct_body_prefix', 'write_mat',
    'write_mat_stream'
]

# data types (mi*) and array classes (mx*) of the MAT-file level 5 format
MI_INT8, MI_INT32, MI_UINT32, MI_DOUBLE = 1, 5, 6, 9
MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 14, 15, 16
MX_CELL, MX_STRUCT, MX_CHAR, MX_DOUBLE = 1, 2, 4, 6

#: The 128-byte file header; the description text is fixed (scipy writes the
#: current time there), the rest is what scipy writes on a little-endian host.
FILE_HEADER = (
    b'MATLAB 5.0 MAT-file Platform: posix, Created on: '
    b'Thu Jan  1 00:00:00 1970').ljust(116, b'\x00') + b'\x00' * 8 + \
    struct.pack('<H', 0x0100) + b'IM'

_PAD = [
    b'', b'\x00' * 7, b'\x00' * 6, b'\x00' * 5, b'\x00' * 4, b'\x00' * 3,
    b'\x00' * 2, b'\x00'
]


def _element(mdtype: int, data: bytes) -> bytes:
    """A data element: small (tag + 4 bytes) up to 4 bytes, else tag + data
    padded to 8 bytes."""
    n = len(data)
    if n <= 4:
        return struct.pack('<I', (n << 16) | mdtype) + data + b'\x00' * (4 - n)
    return struct.pack('<II', mdtype, n) + data + _PAD[n % 8]


def matrix(mclass: int,
           dims: Sequence[int],
           body: bytes,
           name: bytes = b'') -> bytes:
    """A complete ``miMATRIX`` element.

    Args:
        mclass (int): The array class (``MX_*``).
        dims (Sequence[int]): MATLAB dimensions.
        body (bytes): Everything after the name element.
        name (bytes): Variable name (top level only).

    Returns:
        bytes: The element, tag included.
    """
    head = _matrix_head(mclass, dims, name)
    return struct.pack('<II', MI_MATRIX, len(head) + len(body)) + head + body


def matrix_prefix(mclass: int,
                  dims: Sequence[int],
                  body_len: int,
                  name: bytes = b'') -> bytes:
    """The start of a ``miMATRIX`` element whose body (``body_len`` bytes)
    follows separately: ``matrix_prefix(...) + body == matrix(..., body)``."""
    head = _matrix_head(mclass, dims, name)
    return struct.pack('<II', MI_MATRIX, len(head) + body_len) + head


def _matrix_head(mclass: int, dims: Sequence[int], name: bytes) -> bytes:
    return (struct.pack('<IIII', MI_UINT32, 8, mclass, 0) +
            _element(MI_INT32, struct.pack(f'<{len(dims)}i', *dims)) +
            _element(MI_INT8, name))


def encode_char(s: str, name: bytes = b'') -> bytes:
    """A non-empty ASCII string as a 1×n char array."""
    data = s.encode('ascii')
    return matrix(MX_CHAR, (1, len(data)), _element(MI_UTF8, data), name)


_SCALAR_CACHE = {}


def encode_double(arr, name: bytes = b'') -> bytes:
    """A real number or a 0-d/2-D real array as a double matrix."""
    if isinstance(arr, (float, int, np.floating, np.integer)) and not name:
        v = float(arr)
        out = _SCALAR_CACHE.get(v)
        if out is None:
            out = _SCALAR_CACHE[v] = matrix(
                MX_DOUBLE, (1, 1), _element(MI_DOUBLE, struct.pack('<d', v)))
        return out
    a = np.asarray(arr, dtype='<f8')
    if a.ndim == 0:
        a = a.reshape(1, 1)
    if a.ndim != 2:
        raise ValueError(
            f'only 0-d or 2-D arrays are supported, got {a.shape}')
    return matrix(MX_DOUBLE, a.shape, _element(MI_DOUBLE, a.tobytes('F')),
                  name)


def encode_row(values: Sequence[float]) -> bytes:
    """A 1×k double row vector from Python numbers (fast path of
    :func:`encode_double`)."""
    k = len(values)
    return matrix(MX_DOUBLE, (1, k),
                  _element(MI_DOUBLE, struct.pack(f'<{k}d', *values)))


def struct_body_prefix(fieldnames: Sequence[str]) -> bytes:
    """The field-name part of a struct array body (before the elements)."""
    length = max(len(f) for f in fieldnames) + 1
    if length > 32:
        raise ValueError('field names are restricted to 31 characters')
    names = b''.join(
        f.encode('ascii').ljust(length, b'\x00') for f in fieldnames)
    return _element(MI_INT32, struct.pack('<i', length)) + \
        _element(MI_INT8, names)


def encode(value, name: bytes = b'') -> bytes:
    """Encode a value as a complete ``miMATRIX`` element.

    Args:
        value: ``str``, a real number, or a NumPy array (numeric 0-d/2-D,
            structured 2-D or object 2-D), nested as in
            :func:`scipy.io.savemat`.
        name (bytes): Variable name, only for top-level variables.

    Returns:
        bytes: The element.
    """
    if isinstance(value, str):
        return encode_char(value, name)
    if isinstance(value, (float, int, np.floating, np.integer)):
        return encode_double(value, name)
    if not isinstance(value, np.ndarray):
        raise TypeError(f'cannot encode {type(value)}')
    if value.dtype.fields:
        if value.ndim != 2:
            raise ValueError('struct arrays must be 2-D')
        fields = list(value.dtype.names)
        parts: List[bytes] = [struct_body_prefix(fields)]
        columns = [value[f].ravel('F') for f in fields]
        for i in range(value.size):
            for col in columns:
                parts.append(encode(col[i]))
        return matrix(MX_STRUCT, value.shape, b''.join(parts), name)
    if value.dtype == object:
        if value.ndim != 2:
            raise ValueError('cell arrays must be 2-D')
        return matrix(MX_CELL, value.shape,
                      b''.join(encode(v) for v in value.ravel('F')), name)
    if value.dtype.kind in 'fiub':
        return encode_double(value, name)
    raise TypeError(f'cannot encode arrays of dtype {value.dtype}')


def _compressed(data: bytes) -> bytes:
    out = zlib.compress(data)
    return struct.pack('<II', MI_COMPRESSED, len(out)) + out


def write_mat(path: str, variables: dict, compress: bool = True) -> None:
    """Write variables to a MAT file (like ``scipy.io.savemat``).

    Args:
        path (str): Output file.
        variables (dict): name -> value (see :func:`encode`), in file order.
        compress (bool): zlib-compress each variable (``do_compression``).
    """
    with open(path, 'wb') as f:
        f.write(FILE_HEADER)
        for key, value in variables.items():
            elem = encode(value, key.encode('latin1'))
            f.write(_compressed(elem) if compress else elem)


def write_mat_stream(path: str,
                     name: str,
                     mclass: int,
                     dims: Sequence[int],
                     body_len: int,
                     body_chunks: Iterable[bytes],
                     compress: bool = True,
                     level: int = -1) -> None:
    """Write one big variable whose body is produced in chunks.

    The result is identical to :func:`write_mat` on the whole variable.

    Args:
        path (str): Output file.
        name (str): Variable name.
        mclass (int): Array class (``MX_STRUCT`` or ``MX_CELL``).
        dims (Sequence[int]): Its dimensions.
        body_len (int): Total length of the body chunks (needed up front for
            the element tag).
        body_chunks (Iterable[bytes]): The body, in order.
        compress (bool): zlib-compress the variable.
        level (int): zlib compression level; -1 (zlib's default, 6) is what
            scipy uses, 1 is about twice as fast for a third more bytes.
    """
    first = matrix_prefix(mclass, dims, body_len, name.encode('latin1'))
    with open(path, 'wb') as f:
        f.write(FILE_HEADER)
        written = 0
        if not compress:
            f.write(first)
            for chunk in body_chunks:
                written += len(chunk)
                f.write(chunk)
        else:
            comp = zlib.compressobj(level)
            out = [comp.compress(first)]
            for chunk in body_chunks:
                written += len(chunk)
                out.append(comp.compress(chunk))
            out.append(comp.flush())
            total = sum(len(o) for o in out)
            f.write(struct.pack('<II', MI_COMPRESSED, total))
            f.writelines(out)
        if written != body_len:
            raise RuntimeError(f'{path}: body length {written} != {body_len}')
