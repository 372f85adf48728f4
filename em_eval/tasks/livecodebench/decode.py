"""Decoding LiveCodeBench's test cases without executing anything from the data file.

Upstream stores ``private_test_cases`` as base64 of zlib of a pickle of a JSON string (some
records hold plain JSON) and reads them with ``pickle.loads``, which runs whatever the pickle
asks for. Here a :class:`pickle.Unpickler` subclass whose ``find_class`` refuses every global
decodes them: a pickle can then only build the plain values pickle encodes by itself (str,
list, dict, int, float, bool, None, and bytes/tuple/set, which are refused afterwards), and any
attempt to name a callable (``os.system``, ``builtins.eval``, a ``__reduce__`` payload) stops
with :class:`UnsafePickleError` before anything runs. The standard library's unpickler is the
well-kept parser; only the refusal is ours (there is no library for "plain data only" pickles).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from typing import Any

from em_eval.user_errors import UserError

ALLOWED_TYPES = (str, list, dict, int, float, bool, type(None))


class UnsafePickleError(UserError, ValueError):
    """A pickle in the data file asked for something other than plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that resolves no global at all: no class, function or module is ever looked up."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"the pickle asks for {module}.{name}; LiveCodeBench test cases hold only "
                                "str/list/dict/int/float/bool/None, so the record is refused unexecuted")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("the pickle uses a persistent id; refused unexecuted")


def plain_data_loads(payload: bytes) -> Any:
    """The value of ``payload`` if it is plain data (:data:`ALLOWED_TYPES`, nested), else
    :class:`UnsafePickleError`."""
    try:
        value = PlainDataUnpickler(io.BytesIO(payload)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # a truncated or malformed pickle (nothing could have run: no global resolves)
        raise UnsafePickleError(f"not a valid pickle ({type(exc).__name__}: {exc})") from None
    _check_plain(value)
    return value


def _check_plain(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) not in ALLOWED_TYPES:
            raise UnsafePickleError(f"the pickle holds a {type(item).__name__}; only str/list/dict/int/float/"
                                    "bool/None are accepted")
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def decode_test_cases(raw: str) -> list[dict[str, Any]]:
    """Test cases of one field: plain JSON, else base64(zlib(pickle(JSON string))) as upstream.

    Each case is ``{"input": str, "output": str, "testtype": "stdin" | "functional"}``."""
    try:
        cases = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        try:
            packed = zlib.decompress(base64.b64decode(raw.encode("ascii"), validate=True))
        except (binascii.Error, zlib.error, UnicodeEncodeError, ValueError) as exc:
            raise UnsafePickleError(f"neither JSON nor base64/zlib test cases ({type(exc).__name__}: {exc})") from None
        text = plain_data_loads(packed)
        if not isinstance(text, str):
            raise UnsafePickleError(f"the pickle holds a {type(text).__name__}, expected the JSON string of the tests")
        cases = json.loads(text)
    if not isinstance(cases, list) or not all(isinstance(c, dict) and {"input", "output"} <= c.keys() for c in cases):
        raise UnsafePickleError("test cases must be a list of {input, output, testtype} objects")
    return cases


def encode_test_cases(cases: list[dict[str, Any]]) -> str:
    """Upstream's encoding of ``private_test_cases`` (for writing test records)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("ascii")
