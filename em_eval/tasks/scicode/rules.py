"""SciCode's comparison rules and numeric-target reader, as upstream defines them.

This file is self-contained on purpose: the SciCode harness copies its source into each
sandboxed test program as both ``scicode.compare.cmp`` and ``scicode.parse.parse``, so the
dataset's test cases (``from scicode.compare.cmp import cmp_tuple_or_list``) run unchanged.
Semantics follow ``scicode-bench/SciCode`` ``src/scicode/compare/cmp.py`` and
``src/scicode/parse/parse.py::process_hdf5_to_tuple`` (h5py, scipy and sympy are imported
lazily so a program only pays for what it uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sparse_types() -> tuple[type, ...]:
    import scipy.sparse

    return (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix, scipy.sparse.bsr_matrix, scipy.sparse.coo_matrix)


def process_symbol_in_dict(values: dict) -> dict:
    """Replace sympy Symbol values by their names and Symbol keys by their names (upstream order)."""
    import sympy

    out = {}
    for key, value in values.items():
        out[key] = str(value) if isinstance(value, sympy.Symbol) else value
        if isinstance(key, sympy.Symbol):
            out[str(key)] = values[key]
            out.pop(key)
    return out


def are_dicts_close(dict1: dict, dict2: dict, atol: float = 1e-8, rtol: float = 1e-5) -> bool:
    """Same keys, and every value equal (strings, symbols) or ``np.allclose`` (arrays, sparse)."""
    import sympy

    dict1, dict2 = process_symbol_in_dict(dict1), process_symbol_in_dict(dict2)
    if dict1.keys() != dict2.keys():
        return False
    for key in dict1:
        value1, value2 = dict1[key], dict2[key]
        if isinstance(value1, (sympy.Symbol, str)):
            if not value1 == value2:
                return False
        elif isinstance(value1, _sparse_types()):
            if not np.allclose(value1.toarray(), value2.toarray(), atol=atol, rtol=rtol):
                return False
        else:
            try:
                if not np.allclose(value1, value2, atol=atol, rtol=rtol):
                    return False
            except ValueError:
                if not value1 == value2:
                    return False
    return True


def are_csc_matrix_close(matrix1: Any, matrix2: Any) -> bool:
    """Dense ``np.allclose`` of two sparse matrices."""
    return bool(np.allclose(matrix1.toarray(), matrix2.toarray()))


def cmp_tuple_or_list(var1: Any, var2: Any) -> bool:
    """Element-wise: dicts by :func:`are_dicts_close`, sparse densely, bools exactly, else allclose."""
    import scipy.sparse

    if len(var1) != len(var2):
        return False
    for v1, v2 in zip(var1, var2):
        if isinstance(v1, dict):
            if not are_dicts_close(v1, v2):
                return False
        elif isinstance(v1, (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix)):
            if not are_csc_matrix_close(v1, v2):
                return False
        elif isinstance(v1, bool):
            if not v1 == v2:
                return False
        else:
            try:
                if not np.allclose(v1, v2):
                    return False
            except ValueError:
                if not v1 == v2:
                    return False
    return True


# ---- test_data.h5 -------------------------------------------------------------------------------
def process_hdf5_list(group: Any) -> list:
    return [group[key][()] for key in group.keys()]


def process_hdf5_dict(group: Any) -> dict:
    import h5py

    out: dict = {}
    for key, obj in group.items():
        if isinstance(obj, h5py.Group):
            out[key] = process_hdf5_sparse_matrix(obj["sparse_matrix"])
        elif isinstance(obj[()], bytes):
            out[key] = obj[()].decode("utf-8", errors="strict")
        else:
            try:
                out[float(key)] = obj[()]
            except ValueError:
                out[key] = obj[()]
    return out


def process_hdf5_sparse_matrix(group: Any) -> Any:
    import scipy.sparse

    data, shape = group["data"][()], tuple(group["shape"][()])
    if "row" in group and "col" in group:
        return scipy.sparse.coo_matrix((data, (group["row"][()], group["col"][()])), shape=shape)
    if "blocksize" in group:
        return scipy.sparse.bsr_matrix(
            (data, group["indices"][()], group["indptr"][()]), shape=shape, blocksize=tuple(group["blocksize"][()])
        )
    return scipy.sparse.csr_matrix((data, group["indices"][()], group["indptr"][()]), shape=shape)


def process_hdf5_datagroup(group: Any) -> Any:
    for key in group.keys():
        if key == "list":
            return process_hdf5_list(group[key])
        if key == "sparse_matrix":
            return process_hdf5_sparse_matrix(group[key])
        return process_hdf5_dict(group)
    return None


def _h5_value(item: Any) -> Any:
    import h5py

    if isinstance(item, h5py.Dataset):
        value = item[()]
        return value.decode("utf-8", errors="strict") if isinstance(value, bytes) else value
    return process_hdf5_datagroup(item)


def process_hdf5_to_tuple(step_id: str, test_num: int, h5py_file: str) -> list:
    """The numeric targets of one step's ``test_num`` test cases from SciCode's ``test_data.h5``."""
    import h5py

    targets = []
    with h5py.File(h5py_file, "r") as f:
        for test_id in range(test_num):
            group_path = f"{step_id}/test{test_id + 1}"
            if not isinstance(f[group_path], h5py.Group):
                raise FileNotFoundError(f"Path {group_path} not found in the file.")
            group = f[group_path]
            keys = list(group.keys())
            if len(keys) == 1:
                targets.append(_h5_value(group[keys[0]]))
            else:
                targets.append(tuple(_h5_value(group[key]) for key in keys))
    return targets
