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
# Compressed test cases may inflate to at most this many times their size (and 16 MB whatever the ratio):
# real test data compresses 3-20x, a zlib bomb 1000x.
MAX_INFLATION = 100
MIN_INFLATED_CAP = 16 << 20


class UnsafePickleError(UserError, ValueError):
    """A pickle in the data file asked for something other than plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that resolves no global at all: no class, function or module is ever looked up."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"the pickle asks for {module}.{name}; LiveCodeBench test cases hold only "
            "str/list/dict/int/float/bool/None, so the record is refused unexecuted"
        )

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
    """Plain data as JSON makes it: a tree. A container met twice (shared, or holding itself) is refused,
    so the walk visits each object once and ends (a 24-byte self-referencing pickle walked forever)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if type(item) not in ALLOWED_TYPES:
            raise UnsafePickleError(
                f"the pickle holds a {type(item).__name__}; only str/list/dict/int/float/bool/None are accepted"
            )
        if isinstance(item, (list, dict)):
            if id(item) in seen:
                raise UnsafePickleError(
                    "the pickle holds a shared or self-referencing list/dict, which JSON test cases never do; refused"
                )
            seen.add(id(item))
            stack.extend(item.keys() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                stack.extend(item.values())


def _inflate(packed: bytes) -> bytes:
    """``zlib.decompress`` with a cap on the output (:data:`MAX_INFLATION`), so a bomb costs no memory."""
    cap = max(MIN_INFLATED_CAP, MAX_INFLATION * len(packed))
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(packed, cap)
    except zlib.error as exc:
        raise UnsafePickleError(f"corrupt zlib test cases ({exc})") from None
    if inflater.unconsumed_tail:
        raise UnsafePickleError(
            f"compressed test cases of {len(packed)} bytes inflate past {cap} bytes "
            f"({MAX_INFLATION}x): a zlib bomb, refused"
        )
    return out


def _json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise UnsafePickleError("the test cases nest too deeply to be JSON test data; refused") from None


def decode_test_cases(raw: str) -> list[dict[str, Any]]:
    """Test cases of one field: plain JSON, else base64(zlib(pickle(JSON string))) as upstream.

    Each case is ``{"input": str, "output": str, "testtype": "stdin" | "functional"}``."""
    try:
        cases = _json(raw)
    except (json.JSONDecodeError, TypeError):
        try:
            compressed = base64.b64decode(raw.encode("ascii"), validate=True)
            inflater = zlib.decompressobj()
            inflater.decompress(compressed, 1)  # fails at once when this is no zlib stream
        except (binascii.Error, zlib.error, UnicodeEncodeError, ValueError) as exc:
            raise UnsafePickleError(f"neither JSON nor base64/zlib test cases ({type(exc).__name__}: {exc})") from None
        text = plain_data_loads(_inflate(compressed))
        if not isinstance(text, str):
            raise UnsafePickleError(f"the pickle holds a {type(text).__name__}, expected the JSON string of the tests")
        cases = _json(text)
    if not isinstance(cases, list) or not all(isinstance(c, dict) and {"input", "output"} <= c.keys() for c in cases):
        raise UnsafePickleError("test cases must be a list of {input, output, testtype} objects")
    return cases


def encode_test_cases(cases: list[dict[str, Any]]) -> str:
    """Upstream's encoding of ``private_test_cases`` (for writing test records)."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("ascii")
