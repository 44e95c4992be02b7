# Copyright (c) OpenMMLab. All rights reserved.
"""Readers for the native MATLAB / text annotation files of person search sets.

Every failure names the file and the variable or field that is wrong, so that a
broken download is found at start-up, not half-way through an epoch.
"""
import os.path as osp
from typing import Any, Sequence

import numpy as np
from scipy.io import loadmat


class AnnotationError(ValueError):
    """A missing or malformed annotation file, variable or field."""


def load_mat(path: str, variables: Sequence[str]) -> dict:
    """Load a ``.mat`` file and check that it holds the given variables.

    Args:
        path (str): The file.
        variables (Sequence[str]): Variable names that must be present.

    Returns:
        dict: ``scipy.io.loadmat`` output (``struct_as_record=True``,
        ``squeeze_me=False``: the layout other person search code reads).
    """
    if not osp.isfile(path):
        raise AnnotationError(f'{path}: file not found')
    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises several types for broken files
        raise AnnotationError(f'{path}: not a readable MATLAB file ({e})')
    for var in variables:
        if var not in mat:
            found = sorted(k for k in mat if not k.startswith('__'))
            raise AnnotationError(
                f'{path}: missing variable {var!r} (found {found})')
    return mat


def check_fields(arr: Any, fields: Sequence[str], where: str) -> np.ndarray:
    """Check that ``arr`` is a MATLAB struct array with the given fields.

    Args:
        arr: What ``loadmat`` returned for the struct.
        fields (Sequence[str]): Required field names.
        where (str): ``'<file>: <variable path>'`` for error messages.

    Returns:
        np.ndarray: The struct array, flattened to 1-d.
    """
    names = getattr(getattr(arr, 'dtype', None), 'names', None)
    if names is None:
        raise AnnotationError(f'{where}: expected a struct array, got '
                              f'{type(arr).__name__} {getattr(arr, "dtype", "")}')
    missing = [f for f in fields if f not in names]
    if missing:
        raise AnnotationError(
            f'{where}: missing field(s) {missing} (found {list(names)})')
    return np.asarray(arr).reshape(-1)


def mat_str(value: Any, where: str) -> str:
    """A MATLAB char array (as loaded by ``loadmat``) as a Python string."""
    arr = np.asarray(value)
    if arr.dtype.kind == 'O' and arr.size == 1:  # a 1x1 cell holding the string
        return mat_str(arr.reshape(-1)[0], where)
    if arr.dtype.kind != 'U' or arr.size != 1:
        raise AnnotationError(f'{where}: expected a string, got {arr!r}')
    return str(arr.reshape(-1)[0])


def mat_box(value: Any, where: str, allow_empty: bool = False) -> np.ndarray:
    """A MATLAB ``1x4`` numeric box (x, y, w, h) as a float64 array.

    Returns an empty ``(0,)`` array for an empty value when ``allow_empty``.
    """
    arr = np.asarray(value)
    if arr.size == 0 and allow_empty:
        return np.zeros((0, ), np.float64)
    if arr.dtype.kind not in 'iuf' or arr.size != 4:
        raise AnnotationError(
            f'{where}: expected 4 numbers (x, y, w, h), got {arr!r}')
    box = arr.astype(np.float64).reshape(4)
    if not np.isfinite(box).all():
        raise AnnotationError(f'{where}: non-finite box {box.tolist()}')
    return box


def mat_number(value: Any, where: str) -> float:
    """A MATLAB scalar as a float."""
    arr = np.asarray(value)
    if arr.dtype.kind not in 'iufb' or arr.size != 1:
        raise AnnotationError(f'{where}: expected a number, got {arr!r}')
    return float(arr.reshape(-1)[0])


def mat_cell_strings(value: Any, where: str) -> list:
    """A MATLAB cell array of strings as a list of Python strings."""
    arr = np.asarray(value)
    if arr.dtype.kind == 'U':  # a char matrix: one name per row
        return [str(s).strip() for s in arr.reshape(-1)]
    if arr.dtype.kind != 'O':
        raise AnnotationError(
            f'{where}: expected a cell array of strings, got {arr.dtype}')
    return [mat_str(v, f'{where}[{i}]') for i, v in enumerate(arr.reshape(-1))]
