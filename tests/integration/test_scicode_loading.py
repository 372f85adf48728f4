"""Loading the SciCode task: the code tasks check the sandbox first (a probe process), then the data."""

from __future__ import annotations

import json

import pytest

from em_eval.data import DataFileError
from em_eval.tasks.scicode.task import load_dataset, resolve_h5


def test_test_split_without_h5_fails_at_once_saying_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv("EM_EVAL_SCICODE_H5", raising=False)
    with pytest.raises(DataFileError, match="test_data.h5.*drive.google.com.*EM_EVAL_SCICODE_H5"):
        load_dataset(split="test")
    with pytest.raises(DataFileError, match="not found at"):
        resolve_h5(str(tmp_path / "nope.h5"))
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"not hdf5")
    with pytest.raises(DataFileError, match="not a readable HDF5 file"):
        resolve_h5(str(fake))


def test_dev_split_loads_offline():
    rows = load_dataset(split="dev", with_background=False)["test"]
    assert len(rows) == 15 and rows[0]["split"] == "dev" and rows[0]["with_background"] is False
    assert json.loads(rows[0]["problem_json"])["problem_id"] == rows[0]["problem_id"]


def test_h5_with_missing_steps_is_refused(tmp_path):
    import h5py

    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("77.1/test1/var1", data=1.0)
    with pytest.raises(DataFileError, match="lacks the targets of 287 SciCode steps"):
        resolve_h5(str(path))
