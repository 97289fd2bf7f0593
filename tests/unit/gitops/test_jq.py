"""The jq subset behind ignoreDifferences.jqPathExpressions must address what gojq addresses.

Semantics checked against jq's manual: ``path(f)`` of a field of null is the field's path,
iterating null is an error unless ``?`` follows, ``select`` keeps its input where the
condition is true, and ``del`` of a path that does not exist changes nothing. Expressions
are the ones Argo CD's documentation and users write.
"""

from __future__ import annotations

import pytest

from funade.core.gitops import jq

pytestmark = pytest.mark.unit


DOC = {
    "metadata": {"name": "web", "annotations": {"a.b/c": "1", "plain": "2"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "istio-proxy", "image": "proxy:1"},
            {"name": "sidecar", "image": "side:1"},
        ],
        "replicas": 3,
    },
}


@pytest.mark.parametrize(
    ("expression", "paths"),
    [
        (".spec.replicas", [("spec", "replicas")]),
        ('.metadata.annotations."a.b/c"', [("metadata", "annotations", "a.b/c")]),
        ('.metadata.annotations["a.b/c"]', [("metadata", "annotations", "a.b/c")]),
        ('.["spec"]["replicas"]', [("spec", "replicas")]),
        (".spec.containers[0].image", [("spec", "containers", 0, "image")]),
        (".spec.containers[-1].name", [("spec", "containers", 2, "name")]),
        (".spec.containers[].image", [("spec", "containers", i, "image") for i in range(3)]),
        (".spec.missing.deeper", [("spec", "missing", "deeper")]),  # fields of null are null, not errors
        (".spec.initContainers[]?.image", []),
        ('.spec.containers[] | select(.name == "istio-proxy")', [("spec", "containers", 1)]),
        ('.spec.containers[] | select(.name != "app") | .image', [("spec", "containers", i, "image") for i in (1, 2)]),
        (
            '.spec.containers[] | select(.name == "app" or .name == "sidecar")',
            [("spec", "containers", 0), ("spec", "containers", 2)],
        ),
        ('.spec.containers[] | select(.name == "app" and .image == "app:2")', []),
        (
            '.spec.containers[] | select((.name == "app") | not) | .name',
            [("spec", "containers", i, "name") for i in (1, 2)],
        ),
        ('.spec.containers[] | select(.env[]?.name == "X")', [("spec", "containers", 0)]),
        (".metadata.annotations[]", [("metadata", "annotations", "a.b/c"), ("metadata", "annotations", "plain")]),
        (".spec.containers[] | select(.env)", [("spec", "containers", 0)]),  # null is false, a list is true
    ],
)
def test_paths(expression: str, paths: list[tuple[str | int, ...]]) -> None:
    assert jq.compile(expression).paths(DOC) == paths


def test_delete_removes_selected_items_without_shifting_the_wrong_ones() -> None:
    result = jq.delete(DOC, '.spec.containers[] | select(.name == "app" or .name == "sidecar")')
    assert [c["name"] for c in result["spec"]["containers"]] == ["istio-proxy"]
    assert [c["name"] for c in DOC["spec"]["containers"]] == ["app", "istio-proxy", "sidecar"]  # input untouched


def test_delete_of_a_missing_path_changes_nothing() -> None:
    assert jq.delete(DOC, ".spec.template.metadata.annotations.x") == DOC
    assert jq.delete(DOC, ".spec.containers[7]") == DOC


def test_delete_keys_with_dots_and_slashes() -> None:
    result = jq.delete(DOC, '.metadata.annotations."a.b/c"')
    assert result["metadata"]["annotations"] == {"plain": "2"}


def test_delete_all_items_of_an_array() -> None:
    assert jq.delete(DOC, ".spec.containers[]")["spec"]["containers"] == []


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (".spec.initContainers[].image", "cannot iterate over null"),
        (".spec.replicas.value", 'cannot index number with "value"'),
        (".spec.containers.name", 'cannot index array with "name"'),
        (".metadata[0]", "cannot index object with number"),
    ],
)
def test_runtime_errors_name_the_expression(expression: str, message: str) -> None:
    with pytest.raises(jq.JqRuntimeError) as caught:
        jq.compile(expression).paths(DOC)
    assert caught.value.expression == expression
    assert message in str(caught.value)


def test_optional_step_suppresses_the_error() -> None:
    assert jq.compile(".spec.replicas.value?").paths(DOC) == []


@pytest.mark.parametrize(
    "expression",
    [
        ".a | map(.b)",
        ".a[1:3]",
        ".a, .b",
        "del(.a)",
        '.a | select(.b | startswith("x"))',
        "..",
        ".a +",
        "select(.a == 1",
        ".[]]",
        "",
        ".",
        "spec.replicas",
    ],
)
def test_unsupported_expressions_fail_at_compile_time_naming_the_expression(expression: str) -> None:
    with pytest.raises(jq.JqError) as caught:
        jq.compile(expression)
    assert not isinstance(caught.value, jq.JqRuntimeError)
    assert repr(expression) in str(caught.value)


def test_error_message_says_what_is_supported() -> None:
    with pytest.raises(jq.JqError, match=r"supported: \.a\.b"):
        jq.compile(".a | map(.b)")


def test_compare_literals() -> None:
    doc = {"items": [{"n": 1, "ok": True}, {"n": 2, "ok": False}, {"n": None}]}
    assert jq.compile(".items[] | select(.n == 1)").paths(doc) == [("items", 0)]
    assert jq.compile(".items[] | select(.ok == false)").paths(doc) == [("items", 1)]
    assert jq.compile(".items[] | select(.n == null)").paths(doc) == [("items", 2)]
    assert jq.compile(".items[] | select(.ok)").paths(doc) == [("items", 0)]


def test_duplicate_paths_are_reported_once() -> None:
    doc = {"items": [{"tags": ["a", "a"]}]}
    assert jq.compile('.items[] | select(.tags[] == "a")').paths(doc) == [("items", 0)]
