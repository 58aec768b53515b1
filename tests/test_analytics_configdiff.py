"""Nested config flattening and diffs (rustorch_tools.analytics.configdiff)."""

import math

from hypothesis import given
from hypothesis import strategies as st

from rustorch_tools.analytics.configdiff import config_fingerprint, diff, flatten


def test_flatten_nested_dicts_and_lists():
    obj = {"a": {"b": 1, "c": [1, {"d": 2}]}, "e": {}, "f": []}
    assert flatten(obj) == {"a.b": 1, "a.c[0]": 1, "a.c[1].d": 2, "e": {}, "f": []}


def test_flatten_quotes_keys_that_would_collide():
    assert flatten({"a.b": 1, "a": {"b": 2}}) == {'"a.b"': 1, "a.b": 2}


def test_diff_reports_added_removed_changed_sorted():
    a = {"lr": 0.1, "model": {"depth": 4, "act": "relu"}, "seed": 1}
    b = {"lr": 0.2, "model": {"depth": 4, "norm": "bn"}, "seed": 1}
    got = [(e.key, e.change, e.a, e.b) for e in diff(a, b)]
    assert got == [
        ("lr", "changed", 0.1, 0.2),
        ("model.act", "removed", "relu", None),
        ("model.norm", "added", None, "bn"),
    ]


def test_diff_numbers_bools_and_nan():
    assert diff({"x": 1}, {"x": 1.0}) == []
    assert [e.change for e in diff({"x": 1}, {"x": True})] == ["changed"]
    assert diff({"x": math.nan}, {"x": math.nan}) == []
    assert [e.key for e in diff({"x": [1, 2]}, {"x": [1, 2, 3]})] == ["x[2]"]


def test_fingerprint_ignores_key_order():
    assert config_fingerprint({"a": 1, "b": {"c": 2, "d": 3}}) == config_fingerprint(
        {"b": {"d": 3, "c": 2}, "a": 1})
    assert config_fingerprint({"a": 1}) != config_fingerprint({"a": 2})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=12,
)


@given(json_values, json_values)
def test_diff_is_empty_iff_equal_and_antisymmetric(a, b):
    d_ab, d_ba = diff(a, b), diff(b, a)
    fa, fb = flatten(a), flatten(b)
    if fa.keys() != fb.keys():
        assert d_ab
    if not d_ab:
        assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    assert {e.key for e in d_ab} <= fa.keys() | fb.keys()
    assert diff(a, a) == []
    flip = {"added": "removed", "removed": "added", "changed": "changed"}
    assert [(e.key, flip[e.change]) for e in d_ab] == [(e.key, e.change) for e in d_ba]
