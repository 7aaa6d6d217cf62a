from __future__ import annotations

import pytest

from threadline.shared.config import load_settings
from threadline.shared.errors import ConfigError


def test_defaults_and_conversion() -> None:
    s = load_settings({"PORT": "9001", "MOCK_LLM_WORDS": "5", "UNRELATED": "x"})
    assert (s.port, s.mock_llm_words, s.host) == (9001, 5, "127.0.0.1")


@pytest.mark.parametrize(("name", "value"), [("PORT", "eighty"), ("PORT", "70000"), ("MOCK_LLM_DELAY_MS", "-1"),
                                           ("PUBLIC_URL", "chat.example.com"), ("PUBLIC_URL", "https://x.test/?q=1")])
def test_invalid_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_short_auth_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="AUTH_SECRET"):
        load_settings({"AUTH_SECRET": "short"})
