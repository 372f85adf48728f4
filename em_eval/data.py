"""Benchmark files: canonical pinned source, sha256 check, optional local mirror.

Each file is named by its path relative to a data root (the layout of ``../shared/data``).
Sources are pinned to a commit where the mirror's provenance names one; the sha256 pins the
content in every case, so an upstream change is an error, not a silent new benchmark.
With ``EM_EVAL_DATA_DIR`` set, files are read from that mirror; otherwise they are fetched
once from their canonical URL into the em-eval cache. Either way the sha256 must match:
a missing or corrupt file is one clear error, never an empty task. :data:`FILES` is each pin's one home:
task YAMLs name their benchmark, not its file or hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from em_eval.local_files import cache_root, file_sha256, jsonl_rows
from em_eval.user_errors import UserError

ENV_VAR = "EM_EVAL_DATA_DIR"
DOWNLOADABLE = ("https://raw.", "https://huggingface.co/")


class DataFileError(UserError, RuntimeError):
    """A benchmark file is missing, unreachable or does not match its sha256."""


@dataclass(frozen=True)
class DataFile:
    """One benchmark file: where it lives in a mirror, where it comes from, what it hashes to."""

    path: str
    sha256: str
    url: str


_GH = "https://raw.githubusercontent.com"
_QWEN = f"{_GH}/QwenLM/Qwen2.5-Math/a45202bd/evaluation/data"
_PRIME = f"{_GH}/PRIME-RL/PRIME/main/eval/data/AI-MO"
_SCICODE = f"{_GH}/scicode-bench/SciCode/a005915/eval/data"
_UGPHYSICS = f"{_GH}/chotkrin/EM_PT/cafe72e/eval/UGPhysics/data/SemiconductorPhysics"

FILES: dict[str, DataFile] = {
    f.path: f
    for f in (
        DataFile(
            "math500/test.jsonl",
            "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
            f"{_GH}/hkust-nlp/simpleRL-reason/main/examples/simplelr_math_eval/data/math500/test.jsonl",
        ),
        DataFile(
            "amc_aimo/aimo-validation-amc.jsonl",
            "f4d4c28866b1b7dee913538f5bf9760b69532fe0c25eb1b765905546bd61846e",
            f"{_PRIME}/aimo-validation-amc.jsonl",
        ),
        DataFile(
            "amc23/test.jsonl",
            "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
            f"{_QWEN}/amc23/test.jsonl",
        ),
        DataFile(
            "aime_aimo/aimo-validation-aime.jsonl",
            "7db6f782e60f62dafcc492d5c12f59e2a4e7ae74544d98224c5e25afdff32d5a",
            f"{_PRIME}/aimo-validation-aime.jsonl",
        ),
        DataFile(
            "aime24/test.jsonl",
            "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
            f"{_QWEN}/aime24/test.jsonl",
        ),
        DataFile(
            "aime25/aime25_matharena.jsonl",
            "56f3a2007b09e50f7909e62f5eb85ef595f408e188be7282f87b53d0347976a2",
            "https://github.com/eth-sri/matharena (transcribed from data/aime/aime_2025_{I,II}; "
            "no single upstream file: use EM_EVAL_DATA_DIR)",
        ),
        DataFile(
            "minerva_math/test.jsonl",
            "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
            f"{_QWEN}/minerva_math/test.jsonl",
        ),
        DataFile(
            "olympiadbench/test.jsonl",
            "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
            f"{_QWEN}/olympiadbench/test.jsonl",
        ),
        DataFile(
            "leetcode/20240121-Jul.jsonl",
            "7630417651034cfef749d2b21b47163921e1199e078b39ecbc218b4e7c73fbfc",
            f"{_GH}/deepseek-ai/DeepSeek-Coder/main/Evaluation/LeetCode/data/20240121-Jul.jsonl",
        ),
        DataFile(
            "leetcodedataset/LeetCodeDataset-v0.3.1-test.jsonl.gz",
            "3ae536cb41342076691730b72424fdfb9264f233e05c81bf37b5f7e227ea1853",
            f"{_GH}/newfacade/LeetCodeDataset/9477c14d76dcbdef67d70f0e258ad2c2d4178fec/data/"
            "LeetCodeDataset-v0.3.1-test.jsonl.gz",
        ),
        DataFile(
            "ugphysics/SemiconductorPhysics/en.jsonl",
            "a2945b39140a7ce7ac7fa114f5efe969c660b9ef925496b6cf83d9e0414eeae6",
            f"{_UGPHYSICS}/en.jsonl",
        ),
        DataFile(
            "ugphysics/SemiconductorPhysics/zh.jsonl",
            "090bcf39650d724f864b55b8e4d541729dff223f1e468c0421ec6e5024e084bf",
            f"{_UGPHYSICS}/zh.jsonl",
        ),
        DataFile(
            "scicode/problems_all.jsonl",
            "38797fef78f434720be6d053b4f3a86839d6f8ea5fb9115450677cd3a6edf81d",
            f"{_SCICODE}/problems_all.jsonl",
        ),
        DataFile(
            "scicode/problems_dev.jsonl",
            "193968aff23b7ed931c8f6d196b611e2f6694adb49e6cc085444a60ad2fc4f7b",
            f"{_SCICODE}/problems_dev.jsonl",
        ),
        DataFile(
            "scicode/eval_data/13.6.txt",
            "795a2b57c2d9bb12ca4eaf16d6b8e1f202015a89a886628858abf42a1b18a94e",
            f"{_SCICODE}/13.6.txt",
        ),
        DataFile(
            "scicode/eval_data/62.1.txt",
            "bc9931d88a7d5950091b72a996a25b8be6c936fd136b01005e22c3d45b0008a2",
            f"{_SCICODE}/62.1.txt",
        ),
        DataFile(
            "scicode/eval_data/76.3.txt",
            "4758300d96ea726cdc0fbf749f1bc437030d2a3e8b43bde232ecdeaf636cd367",
            f"{_SCICODE}/76.3.txt",
        ),
        DataFile(
            "scicode/eval_data/background_comment_template.txt",
            "9b407bdd44937f13cf090b5ae35436b7dc60a0fb8494caec6995c9c83cdadb03",
            f"{_SCICODE}/background_comment_template.txt",
        ),
        DataFile(
            "scicode/eval_data/multistep_template.txt",
            "2c6946acf50f69d37647b83c04e77e6bdc5f3ff04e87d4aa6f79d0f27b5dcbc2",
            f"{_SCICODE}/multistep_template.txt",
        ),
    )
}


# sha256 of the decompressed LeetCodeDataset v0.3.1 test JSONL (the same records under any file name)
LEETCODEDATASET_JSONL_SHA256 = "aec951945feb555b4c72783519452a7a0437ca8c6e5624a83d0ae888718fa4ed"


def data_file(path: str) -> Path:
    """Local path of a verified benchmark file (mirror first, else download once)."""
    if path not in FILES:
        raise KeyError(f"unknown benchmark file {path!r}; known: {', '.join(sorted(FILES))}")
    spec = FILES[path]
    mirror = os.environ.get(ENV_VAR)
    if mirror:
        local = Path(mirror) / spec.path
        if not local.is_file():
            raise DataFileError(
                f"benchmark file {spec.path} is missing from {ENV_VAR}={mirror} (looked for {local}); "
                f"copy it there (expected sha256 {spec.sha256}), or unset {ENV_VAR} to download it from {spec.url}"
            )
    else:
        local = fetched_once(spec.url, spec.path)
    actual = file_sha256(local)
    if actual != spec.sha256:
        raise DataFileError(
            f"benchmark file {local} is corrupt or a different version: sha256 {actual}, expected {spec.sha256}. "
            f"Replace it with the file from {spec.url}" + (f" (or fix {ENV_VAR})" if mirror else "")
        )
    return local


def fetched_once(url: str, name: str, sha256: str | None = None) -> Path:
    """The cached copy of the data root's file ``name``, downloaded from ``url`` on first use
    (and checked against ``sha256`` when given)."""
    local = cache_root() / "data" / name
    if not local.is_file():
        _download(url, local, name, sha256)
    return local


def _download(url: str, local: Path, name: str, sha256: str | None = None) -> None:
    """Fetch ``url`` to ``local`` atomically, with a progress bar; one clear error offline.

    The file is checked against the pinned ``sha256`` when given, and a Hugging Face LFS file also
    against the sha256 the hub declares for it (``X-Linked-Etag``)."""
    if not url.startswith(DOWNLOADABLE):
        raise DataFileError(f"{name} has no downloadable canonical file ({url}); set {ENV_VAR} to a mirror")
    local.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out:
            digest, declared = fetch(url, out, name)
        for expected, whose in ((sha256, "em-eval pins"), (declared, "the server declares")):
            if expected and expected != digest:
                raise DataFileError(
                    f"download of {name} from {url} is corrupt: sha256 {digest}, {whose} "
                    f"{expected}; delete {local.parent} and try again"
                )
        os.replace(tmp, local)
    except OSError as exc:
        raise DataFileError(
            f"could not download benchmark file {name} from {url} ({exc}); "
            f"offline machines: set {ENV_VAR} to a local mirror holding {name}"
        ) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class _DeclaredSha256(urllib.request.HTTPRedirectHandler):
    """Follows redirects and keeps the sha256 a response on the way declares (the hub sends
    ``X-Linked-Etag`` on its redirect to the storage host, not on the file itself)."""

    def __init__(self) -> None:
        self.sha256: str | None = None

    def note(self, headers: Any) -> None:
        tag = (headers.get("X-Linked-Etag") or "").strip('"')
        if len(tag) == 64:
            self.sha256 = tag

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.note(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, out: Any, name: str) -> tuple[str, str | None]:
    """Stream ``url`` into ``out`` in 1 MiB blocks under a tqdm bar: (sha256 of what came, sha256
    the server declared or None)."""
    from tqdm.auto import tqdm

    declared = _DeclaredSha256()
    digest = hashlib.sha256()
    with urllib.request.build_opener(declared).open(url, timeout=60) as resp:
        declared.note(resp.headers)
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest(), declared.sha256


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """All records of a verified JSONL benchmark file."""
    return [row for _, row in jsonl_rows(data_file(path), DataFileError, "replace the file (see its sha256 above)")]
