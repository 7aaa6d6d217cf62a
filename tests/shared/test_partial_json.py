"""A JSON document still streaming in shows what it has so far."""

from __future__ import annotations

import pytest

from threadline.shared.partial_json import parse_partial


@pytest.mark.parametrize(("text", "value"), [
    ("", None),
    ('{"a": 1}', {"a": 1}),
    ('{"a": "hel', {"a": "hel"}),
    ('{"a": [1, 2', {"a": [1, 2]}),
    ('{"a": 1, "b', {"a": 1}),
    ('{"a": 1,', {"a": 1}),
    ('{"a": tr', {}),
    ('[{"x": {"y": "z', [{"x": {"y": "z"}}]),
    ('{"a": "quote \\"in', {"a": 'quote "in'}),
])
def test_prefixes(text: str, value: object) -> None:
    assert parse_partial(text) == value


def test_every_prefix_of_a_document_parses_to_a_growing_value() -> None:
    doc = '{"title": "Plan", "steps": [{"n": 1, "do": "draft"}, {"n": 2, "do": "ship"}], "done": false}'
    for i in range(len(doc) + 1):
        parse_partial(doc[:i])  # never raises
    assert parse_partial(doc) == {"title": "Plan", "steps": [{"n": 1, "do": "draft"}, {"n": 2, "do": "ship"}],
                                  "done": False}
