"""Model options: a bad base URL or timeout is a usage error."""

from __future__ import annotations

import pytest

from agentloop._errors import UsageError
from agentloop._wire.compatible import OpenAICompatible


@pytest.mark.parametrize("base_url", ["ftp://h/v1", "not a url", "/v1", ""])
def test_bad_base_url(base_url):
    with pytest.raises(UsageError, match="base_url"):
        OpenAICompatible("x", base_url=base_url)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_bad_timeout(timeout):
    with pytest.raises(UsageError, match="timeout"):
        OpenAICompatible("x", base_url="http://h/v1", timeout=timeout)
