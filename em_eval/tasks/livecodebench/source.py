"""Where LiveCodeBench release_v2 comes from: a local path, or the hub at a pinned revision.

release_v2 is ``test.jsonl`` + ``test2.jsonl`` of the Hugging Face dataset
``livecodebench/code_generation_lite`` (about 1.96 GB; no git copy exists, so em-eval's data
mirror cannot hold it). In order of precedence:

1. ``--metadata '{"data_path": ...}'``: a JSONL file in the upstream schema, or a folder holding
   ``test.jsonl`` and ``test2.jsonl``;
2. ``$EM_EVAL_LIVECODEBENCH``: the same, for compute nodes without internet;
3. the em-eval cache (``~/.cache/em_eval/data/livecodebench/release_v2/``), filled once from
   ``https://huggingface.co/datasets/livecodebench/code_generation_lite/resolve/<REVISION>/``
   with a progress bar; each file is checked against the sha256 the hub declares for it.

:data:`SHA256` pins both files (the hub's LFS sha256 at :data:`REVISION`, as its tree API lists
them; 1 252 609 773 and 713 377 060 bytes): a download must match, and a local copy that does not
is named in a warning, since its scores are not comparable with the paper's. Every loaded file's
sha256 is also recorded in each document (so in ``--log_samples`` output).
"""

from __future__ import annotations

import os
from pathlib import Path

from em_eval.data import DataFileError, fetched_once

REPO = "livecodebench/code_generation_lite"
REVISION = "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"  # holds test.jsonl .. test6.jsonl (release_v6)
RELEASE_V2 = ("test.jsonl", "test2.jsonl")
SHA256 = {
    "test.jsonl": "2bd02b38beb48e8c46b5b9987095d999ff38cd8efc255ea5d58974317c48f63f",
    "test2.jsonl": "095df7c5daf15f882c51a9deb84085cff1e073495a5dbcf95015a564d485f3a3",
}
ENV_VAR = "EM_EVAL_LIVECODEBENCH"


def hub_url(name: str) -> str:
    return f"https://huggingface.co/datasets/{REPO}/resolve/{REVISION}/{name}"


def release_files(data_path: str | None = None) -> list[Path]:
    """The JSONL files to read, downloading release_v2 once when no local path is given."""
    chosen = data_path or os.environ.get(ENV_VAR)
    if not chosen:
        return [fetched_once(hub_url(name), f"livecodebench/release_v2/{name}", SHA256[name]) for name in RELEASE_V2]
    path = Path(chosen).expanduser()
    files = [path / name for name in RELEASE_V2] if path.is_dir() else [path]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        origin = "data_path" if data_path else ENV_VAR
        raise DataFileError(
            f"LiveCodeBench data not found: {', '.join(missing)} (from {origin}={chosen}). Download "
            f"{' and '.join(hub_url(n) for n in RELEASE_V2)} into one folder and pass it with "
            f'--metadata \'{{"data_path": "/path/to/folder"}}\' or {ENV_VAR}=/path/to/folder '
            f"(or unset both to download them once into the em-eval cache)"
        )
    return files
