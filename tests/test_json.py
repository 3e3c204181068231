"""`agentloop._json.loads` reads JSON as `json.loads` does, through a faster parser first."""

from __future__ import annotations

import json
import re

import pytest

from agentloop._json import loads

SAME = [
    b'{"id":"chatcmpl-1","choices":[{"index":0,"message":{"content":"hi"}}]}',
    b'{"a":1,"a":2}',  # the last duplicate wins
    b'{"n":123456789012345678901234567890}',  # beyond 64 bits
    b"[NaN, Infinity, -Infinity, 1e400]",  # Python's extensions
    b'"\\ud800"',  # a lone surrogate (the faster parser refuses it)
    b'\xef\xbb\xbf{"a":1}',  # a byte-order mark (json.loads skips it in bytes)
    b"[" * 300 + b"]" * 300,  # deeper than the faster parser's limit of 200
    '{"é": "\u2028"}'.encode(),
    '{"a": 1}',  # text as well as bytes
]


@pytest.mark.parametrize("raw", SAME)
def test_same_value_as_json_loads(raw: bytes | str):
    expected = json.loads(raw)
    got = loads(raw)
    assert json.dumps(got) == json.dumps(expected)  # NaN compares unequal to itself


@pytest.mark.parametrize("raw", [b"", b'{"a":1} x', b'{"a":', b'{"a":"\xff"}', "\ufeff{}"])
def test_same_error_as_json_loads(raw: bytes | str):
    try:
        json.loads(raw)
    except ValueError as error:
        expected = error
    else:
        pytest.fail("json.loads accepted it")
    with pytest.raises(type(expected), match=re.escape(str(expected))):
        loads(raw)
