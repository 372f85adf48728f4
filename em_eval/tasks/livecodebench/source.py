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

The files' own sha256 could not be read on the machine this was written on (no hub access; the
docs and the mirror's README do not list them), so :data:`SHA256` is unknown rather than made up:
every loaded file's sha256 is computed, logged and recorded in each document (so in
``--log_samples`` output), so runs can be compared by it.
"""

from __future__ import annotations

import os
from pathlib import Path

from em_eval.data import DataFileError, fetched_once

REPO = "livecodebench/code_generation_lite"
REVISION = "0fe84c3912ea0c4d4a78037083943e8f0c4dd505"  # holds test.jsonl .. test6.jsonl (release_v6)
RELEASE_V2 = ("test.jsonl", "test2.jsonl")
SHA256: dict[str, str | None] = {"test.jsonl": None, "test2.jsonl": None}  # unknown here, see the module note
ENV_VAR = "EM_EVAL_LIVECODEBENCH"


def hub_url(name: str) -> str:
    return f"https://huggingface.co/datasets/{REPO}/resolve/{REVISION}/{name}"


def release_files(data_path: str | None = None) -> list[Path]:
    """The JSONL files to read, downloading release_v2 once when no local path is given."""
    chosen = data_path or os.environ.get(ENV_VAR)
    if not chosen:
        return [fetched_once(hub_url(name), f"livecodebench/release_v2/{name}") for name in RELEASE_V2]
    path = Path(chosen).expanduser()
    files = [path / name for name in RELEASE_V2] if path.is_dir() else [path]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        origin = "data_path" if data_path else ENV_VAR
        raise DataFileError(
            f"LiveCodeBench data not found: {', '.join(missing)} (from {origin}={chosen}). Download "
            f"{' and '.join(hub_url(n) for n in RELEASE_V2)} into one folder and pass it with "
            f"--metadata '{{\"data_path\": \"/path/to/folder\"}}' or {ENV_VAR}=/path/to/folder "
            f"(or unset both to download them once into the em-eval cache)")
    return files
