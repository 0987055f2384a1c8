"""An in-process bumble LocalLink per test: virtual sensors and the gateway meet on it."""

from __future__ import annotations

import pytest
from bumble.link import LocalLink


@pytest.fixture
def link() -> LocalLink:
    return LocalLink()
