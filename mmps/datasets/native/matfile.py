# Copyright (c) OpenMMLab. All rights reserved.
"""A fast reader of the MATLAB level-5 MAT files of person search datasets.

:func:`scipy.io.loadmat` builds every element of a struct array one by one
(~10 µs each): the CUHK-SYSU protocol file ``TestG4000.mat`` (2,900 queries x
4,000 gallery entries of three fields) takes minutes. This reader knows the
layout :mod:`mmps.datasets.synthetic.mat5` writes (and MATLAB writes):

* :func:`read_mat` parses a whole file into exactly what ``scipy.io.loadmat``
  returns with its defaults (``struct_as_record=True``, ``squeeze_me=False``,
  ``chars_as_strings=True``, stored dtypes) for the subset of the format the
  annotation files use: numeric, char, cell and struct arrays.
* :func:`iter_struct_array` streams one big struct variable element by
  element (zlib output in bounded chunks) and returns the struct-array fields
  named in ``columns`` as :class:`LeafColumns`: every field of such a struct
  read at once with numpy (the element tags are located by a vectorised scan
  and checked to chain exactly from the first to the last byte).

Anything outside that subset (big-endian or v7.3 files, complex, sparse or
object arrays, an element that does not chain) raises :class:`MatUnsupported`;
callers then read the file with scipy. Only numpy and zlib are imported.
"""
import struct
import zlib
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = ['MatUnsupported', 'LeafColumns', 'read_mat', 'iter_struct_array']

MI_INT8, MI_UINT32, MI_INT32 = 1, 6, 5
MI_MATRIX, MI_COMPRESSED = 14, 15
MX_CELL, MX_STRUCT, MX_CHAR = 1, 2, 4
#: numeric data types (``mi*``) -> numpy dtype, as scipy returns them
_DTYPES = {
    1: np.dtype('i1'), 2: np.dtype('u1'), 3: np.dtype('<i2'),
    4: np.dtype('<u2'), 5: np.dtype('<i4'), 6: np.dtype('<u4'),
    7: np.dtype('<f4'), 9: np.dtype('<f8'), 12: np.dtype('<i8'),
    13: np.dtype('<u8')
}
#: one-byte (utf8, uint8, int8) and two-byte (uint16, utf16) char data
_CHAR1, _CHAR2 = (16, 2, 1), (4, 17)
_NUMERIC = range(6, 16)  # mxDOUBLE .. mxUINT64
_II = struct.Struct('<II')
#: decompressed bytes held at once while streaming a variable
_CHUNK = 1 << 23


class MatUnsupported(Exception):
    """The file uses a part of the MAT format this reader leaves to scipy
    (or is broken: scipy then names the problem)."""


def _tag(buf, pos: int) -> Tuple[int, int, int, int]:
    """(mdtype, data start, data length, next element) at ``pos``."""
    mdtype, n = _II.unpack_from(buf, pos)
    if mdtype >> 16:  # small data element: 4 bytes of data in the tag
        return mdtype & 0xFFFF, pos + 4, mdtype >> 16, pos + 8
    return mdtype, pos + 8, n, pos + 8 + n + (-n % 8)


def _header(buf, pos: int) -> Tuple[int, int, tuple, str, int, int]:
    """(class, flag bits, dims, name, body start, end) of an ``miMATRIX``."""
    mdtype, nbytes = _II.unpack_from(buf, pos)
    if mdtype != MI_MATRIX or nbytes < 16:
        raise MatUnsupported(f'element type {mdtype} ({nbytes} bytes)')
    end = pos + 8 + nbytes
    ftype, fstart, flen, p = _tag(buf, pos + 8)
    if ftype != MI_UINT32 or flen != 8:
        raise MatUnsupported('array flags')
    flags = _II.unpack_from(buf, fstart)[0]
    dtype, dstart, dlen, p = _tag(buf, p)
    if dtype != MI_INT32 or dlen < 8:
        raise MatUnsupported('dimensions')
    dims = struct.unpack_from(f'<{dlen // 4}i', buf, dstart)
    ntype, nstart, nlen, p = _tag(buf, p)
    if ntype != MI_INT8:
        raise MatUnsupported('array name')
    name = bytes(buf[nstart:nstart + nlen]).decode('latin1')
    return flags & 0xFF, (flags >> 8) & 0xFF, dims, name, p, end


def _chars(mdtype: int, data: bytes) -> str:
    if mdtype in _CHAR1:
        return data.decode('utf-8' if mdtype == 16 else 'latin1')
    if mdtype in _CHAR2:
        return data.decode('utf-16-le')
    raise MatUnsupported(f'char data of type {mdtype}')


def _matrix(buf, pos: int) -> Tuple[str, object, int]:
    """(name, value as scipy returns it, next element) of an ``miMATRIX``."""
    mclass, bits, dims, name, p, end = _header(buf, pos)
    n = int(np.prod(dims))
    if bits & 0x08:
        raise MatUnsupported('complex array')
    if mclass in _NUMERIC:
        mdtype, start, length, _ = _tag(buf, p)
        dtype = _DTYPES.get(mdtype)
        if dtype is None or length != n * dtype.itemsize:
            raise MatUnsupported(f'numeric data of type {mdtype}')
        value = np.frombuffer(buf, dtype, n, start).reshape(dims, order='F')
        return name, value.copy(order='F'), end
    if mclass == MX_CHAR:
        if len(dims) != 2:
            raise MatUnsupported('char array of more than 2 dimensions')
        mdtype, start, length, _ = _tag(buf, p)
        text = _chars(mdtype, bytes(buf[start:start + length]))
        rows, cols = dims
        if n == 0:
            if dims[0] != 0 or dims[1] != 0:
                raise MatUnsupported('empty char array')
            return name, np.empty(0, '<U1'), end
        if len(text) != n:
            raise MatUnsupported('char data length')
        # column-major characters -> one string per row
        value = [text[r::rows] for r in range(rows)]
        return name, np.array(value, f'<U{cols}'), end
    if mclass == MX_CELL:
        value = np.empty(n, object)
        for i in range(n):
            _, value[i], p = _matrix(buf, p)
        return name, value.reshape(dims, order='F'), end
    if mclass == MX_STRUCT:
        fields, p = _field_names(buf, p)
        value = np.empty(n, [(f, object) for f in fields])
        columns = [value[f] for f in fields]
        for i in range(n):
            for col in columns:
                _, col[i], p = _matrix(buf, p)
        return name, value.reshape(dims, order='F'), end
    raise MatUnsupported(f'array class {mclass}')


def _field_names(buf, p: int) -> Tuple[list, int]:
    ltype, lstart, llen, p = _tag(buf, p)
    ntype, nstart, nlen, p = _tag(buf, p)
    if ltype != MI_INT32 or ntype != MI_INT8:
        raise MatUnsupported('struct field names')
    length = _II.unpack_from(buf, lstart)[0] if llen == 4 else 0
    raw = bytes(buf[nstart:nstart + nlen])
    if length <= 0 or nlen % length:
        raise MatUnsupported('struct field names')
    fields = [
        raw[i:i + length].split(b'\x00', 1)[0].decode('latin1')
        for i in range(0, nlen, length)
    ]
    if not fields or len(set(fields)) != len(fields) or not all(fields):
        raise MatUnsupported('struct field names')
    return fields, p


def _check_file_header(head: bytes) -> None:
    if len(head) < 128 or head[126:128] != b'IM' or \
            head[124:126] != b'\x00\x01':
        raise MatUnsupported('not a little-endian level 5 MAT file')


def _variables(path: str) -> Iterator[bytes]:
    """The top-level elements of a MAT file, decompressed, one by one."""
    with open(path, 'rb') as f:
        data = f.read()
    _check_file_header(data[:128])
    pos = 128
    while pos + 8 <= len(data):
        start = pos
        mdtype, nbytes = _II.unpack_from(data, pos)
        pos += 8 + nbytes
        if mdtype == MI_COMPRESSED:
            try:
                yield zlib.decompress(data[start + 8:pos])
            except zlib.error as e:
                raise MatUnsupported(f'compressed variable ({e})')
        elif mdtype == MI_MATRIX:
            yield data[start:pos]
            pos += -nbytes % 8
        else:
            raise MatUnsupported(f'top-level element of type {mdtype}')


def read_mat(path: str) -> Dict[str, object]:
    """Read a MAT file as ``scipy.io.loadmat(path)`` does (variables only).

    Args:
        path (str): The file.

    Returns:
        dict: Variable name -> value, the types, dtypes and shapes of scipy's
        default reading.

    Raises:
        MatUnsupported: The file is outside the subset this reader handles.
    """
    out = {}
    try:
        for elem in _variables(path):
            name, value, _ = _matrix(elem, 0)
            out.setdefault(name, value)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        raise MatUnsupported(str(e))
    return out


class LeafColumns:
    """The fields of a struct array whose elements are numbers or strings,
    one column each.

    Attributes:
        size (int): Number of struct elements.
        fields (list[str]): Field names.
        kinds (dict): field -> ``'char'`` or ``'numeric'``.
        strings (dict): field -> (size, ) str array (char fields, one row).
        dims (dict): field -> (size, 2) int64 dims (numeric fields).
        offsets (dict): field -> (size + 1, ) int64; the values of element
            ``i`` are ``values[f][offsets[f][i]:offsets[f][i + 1]]``
            (column-major, as float64).
        values (dict): field -> flat float64 values (numeric fields).
    """

    def __init__(self, size: int, fields: Sequence[str]) -> None:
        self.size = size
        self.fields = list(fields)
        self.kinds, self.strings = {}, {}
        self.dims, self.offsets, self.values = {}, {}, {}

    def numbers(self, field: str, i: int) -> np.ndarray:
        """The values of element ``i`` of a numeric field (MATLAB dims)."""
        off = self.offsets[field]
        return self.values[field][off[i]:off[i + 1]].reshape(
            self.dims[field][i], order='F')


def _leaf_columns(buf, p: int, end: int, size: int,
                  fields: Sequence[str]) -> Optional[LeafColumns]:
    """Columns of a struct body (the elements after the field names), or
    None when an element is not a plain 2-D numeric or one-row char array or
    the tags do not chain exactly over ``[p, end)``."""
    nf = len(fields)
    count = size * nf
    if count == 0 or (end - p) % 8:
        return None
    w = np.frombuffer(buf, '<u4', (end - p) // 4, p).reshape(-1, 2)
    # an element: miMATRIX tag, then the array-flags tag (miUINT32, 8)
    k = np.flatnonzero(w[:-1, 0] == MI_MATRIX)
    k = k[(w[k + 1, 0] == MI_UINT32) & (w[k + 1, 1] == 8)]
    if len(k) != count or k[0] != 0:
        return None
    nxt = k + 1 + (w[k, 1].astype(np.int64) + 7) // 8
    if not (np.array_equal(k[1:], nxt[:-1]) and nxt[-1] == len(w)):
        return None
    if np.any(nxt - k < 7):
        return None
    flags = w[k + 2, 0]
    # 2-D dims, an empty name; no complex / global flag
    if not (np.all(w[k + 3, 0] == MI_INT32) and np.all(w[k + 3, 1] == 8)
            and np.all(w[k + 5, 0] == MI_INT8) and np.all(w[k + 5, 1] == 0)
            and np.all((flags >> 8) & 0x0C == 0)):
        return None
    dims = w[k + 4].astype(np.int64)
    # the data element: small (data in the tag) or regular
    t = w[k + 6, 0]
    small = (t >> 16) != 0
    mdtype = np.where(small, t & 0xFFFF, t).astype(np.int64)
    length = np.where(small, t >> 16, w[k + 6, 1]).astype(np.int64)
    start = p + 8 * (k + 6) + np.where(small, 4, 8)
    if np.any(start + length > p + 8 * nxt):
        return None
    mclass = (flags & 0xFF).astype(np.int64)
    out = LeafColumns(size, fields)
    u8 = np.frombuffer(buf, np.uint8, end - p, p)
    for j, f in enumerate(fields):
        sel = slice(j, None, nf)
        cls, d = mclass[sel], dims[sel]
        if np.all(cls == MX_CHAR):
            column = _char_column(u8, start[sel] - p, length[sel],
                                  mdtype[sel], d)
            if column is None:
                return None
            out.kinds[f], out.strings[f] = 'char', column
        elif np.all((cls >= 6) & (cls <= 15)):
            values = _numeric_column(u8, start[sel] - p, length[sel],
                                     mdtype[sel], d)
            if values is None:
                return None
            out.kinds[f], out.dims[f] = 'numeric', d
            out.offsets[f] = np.concatenate([[0], np.cumsum(d.prod(1))])
            out.values[f] = values
        else:
            return None
    return out


def _gather(u8: np.ndarray, start: np.ndarray,
            length: np.ndarray) -> np.ndarray:
    """Concatenated bytes ``u8[start[i]:start[i] + length[i]]``."""
    total = int(length.sum())
    if total == 0:
        return np.zeros(0, np.uint8)
    offsets = np.cumsum(length) - length
    idx = np.arange(total) - np.repeat(offsets - start, length)
    return u8[idx]


def _char_column(u8, start, length, mdtype, dims) -> Optional[np.ndarray]:
    """One-row ASCII char arrays as a str array."""
    one = (mdtype == 16) | (mdtype == 2) | (mdtype == 1)
    two = (mdtype == 4) | (mdtype == 17)
    n = np.where(one, length, length // 2)
    if not np.all(one | two) or np.any(dims[:, 0] != 1) or \
            np.any(dims[:, 1] != n) or np.any(n == 0):
        return None
    raw = _gather(u8, start, length)
    if two.any():  # widen the one-byte strings, then check the high bytes
        if one.any():
            return None
        if np.any(raw[1::2]):
            return None
        raw = raw[0::2]
    if np.any(raw >= 128):
        return None
    cols = int(n.max())
    grid = np.zeros((len(n), cols), np.uint8)
    rows = np.repeat(np.arange(len(n)), n)
    grid[rows, np.arange(len(raw)) - np.repeat(np.cumsum(n) - n, n)] = raw
    return grid.view(f'S{cols}').reshape(-1).astype(f'U{cols}')


def _numeric_column(u8, start, length, mdtype, dims) -> Optional[np.ndarray]:
    """Numeric arrays of any stored type as one flat float64 array."""
    count = dims.prod(1)
    out = np.zeros(int(count.sum()), np.float64)
    offsets = np.cumsum(count) - count
    for t in np.unique(mdtype).tolist():
        dtype = _DTYPES.get(int(t))
        sel = np.flatnonzero(mdtype == t)
        if dtype is None or np.any(length[sel] != count[sel] * dtype.itemsize):
            return None
        raw = _gather(u8, start[sel], length[sel])
        where = np.repeat(offsets[sel], count[sel]) + np.arange(
            int(count[sel].sum())) - np.repeat(
                np.cumsum(count[sel]) - count[sel], count[sel])
        out[where] = raw.view(dtype).astype(np.float64)
    return out


class _Stream:
    """Decompressed bytes of a file's first variable, read on demand."""

    def __init__(self, path: str) -> None:
        self.f = open(path, 'rb')
        _check_file_header(self.f.read(128))
        mdtype, nbytes = _II.unpack(self.f.read(8))
        self.inflate = zlib.decompressobj() \
            if mdtype == MI_COMPRESSED else None
        self.buf = bytearray() if self.inflate else bytearray(
            struct.pack('<II', mdtype, nbytes))
        self.pos = 0  # absolute offset of buf[0] in the variable

    def close(self) -> None:
        self.f.close()

    def need(self, end: int) -> None:
        """Hold the variable's bytes up to ``end`` (absolute)."""
        while self.pos + len(self.buf) < end:
            if self.inflate is None:
                data = self.f.read(_CHUNK)
                if not data:
                    raise MatUnsupported('truncated variable')
            else:
                src = self.inflate.unconsumed_tail
                if not src:
                    src = self.f.read(1 << 20)
                    if not src:
                        raise MatUnsupported('truncated compressed variable')
                data = self.inflate.decompress(src, _CHUNK)
            self.buf += data

    def read(self, start: int, end: int) -> bytes:
        """A copy of the variable's bytes ``[start, end)`` (absolute)."""
        self.need(end)
        return bytes(self.buf[start - self.pos:end - self.pos])

    def view(self, start: int, end: int) -> memoryview:
        self.need(end)
        return memoryview(self.buf)[start - self.pos:end - self.pos]

    def drop(self, upto: int) -> None:
        """Forget the bytes before ``upto`` (absolute)."""
        if upto - self.pos > _CHUNK:
            del self.buf[:upto - self.pos]
            self.pos = upto


def iter_struct_array(path: str, var: str,
                      columns: Sequence[str] = ()) -> Iterator[dict]:
    """Stream the elements of a struct variable (the file's first one).

    Args:
        path (str): The MAT file.
        var (str): The variable's name.
        columns (Sequence[str]): Fields holding struct arrays to return as
            :class:`LeafColumns` (when their elements are plain numbers or
            strings; otherwise as scipy returns them).

    Yields:
        dict: Per element (column-major order), field -> value as scipy
        returns it, or :class:`LeafColumns`.

    Raises:
        MatUnsupported: The file is outside the subset this reader handles,
            or ``var`` is not its first variable.
    """
    stream = _Stream(path)
    try:
        yield from _iter_struct(stream, var, set(columns))
    except (struct.error, ValueError, IndexError, UnicodeDecodeError,
            zlib.error) as e:
        raise MatUnsupported(str(e))
    finally:
        stream.close()


def _iter_struct(stream: _Stream, var: str, columns: set) -> Iterator[dict]:
    total = 8 + _II.unpack(stream.read(0, 8))[1]
    stream.need(min(total, 4096))
    head = stream.read(0, min(total, stream.pos + len(stream.buf)))
    mclass, bits, dims, name, p, end = _header(head, 0)
    if name != var or mclass != MX_STRUCT:
        raise MatUnsupported(f'first variable {name!r} is not the struct '
                             f'{var!r}')
    fields, p = _field_names(head, p)
    for _ in range(int(np.prod(dims))):
        item = {}
        for f in fields:
            size = 8 + _II.unpack(stream.read(p, p + 8))[1]
            elem = stream.view(p, p + size)
            try:
                item[f] = _value(elem, f in columns)
            finally:
                elem.release()
            p += size
            stream.drop(p)
        yield item
    if p != end:
        raise MatUnsupported(f'{var}: {end - p} bytes after the last element')


def _value(elem, as_columns: bool):
    if as_columns:
        mclass, bits, dims, _, p, end = _header(elem, 0)
        if mclass == MX_STRUCT and not bits & 0x08:
            fields, p = _field_names(elem, p)
            cols = _leaf_columns(elem, p, end, int(np.prod(dims)), fields)
            if cols is not None:
                return cols
    return _matrix(elem, 0)[1]
