"""Loading manifests: documents, lines, List expansion and located errors."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from funade.core import manifests
from funade.core.manifests import Document, ManifestError

pytestmark = pytest.mark.unit


def load(text: str, source: str = "test.yaml") -> list[Document]:
    return manifests.load_documents(textwrap.dedent(text), source)


def test_multi_document_yaml_with_lines() -> None:
    docs = load(
        """\
        # leading comment
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: one
        data:
          key: value
        ---
        ---
        # only a comment
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: two
        """
    )
    assert [d.name for d in docs] == ["one", "two"]
    assert [d.kind for d in docs] == ["ConfigMap", "Namespace"]
    assert docs[0].api_version == "v1"
    assert docs[0].line == 2
    assert docs[1].line == 12
    assert docs[0].line_of(("data", "key")) == 7
    assert docs[0].line_of(("data", "missing")) == 6  # nearest parent
    assert docs[0].line_of(()) == 2
    assert docs[0].source == "test.yaml"


def test_json_is_yaml() -> None:
    docs = manifests.load_documents('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}', "ns.json")
    assert docs[0].obj == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def test_empty_text_has_no_documents() -> None:
    assert manifests.load_documents("", "empty.yaml") == []
    assert manifests.load_documents("# nothing\n---\n", "empty.yaml") == []


def test_sequence_item_lines() -> None:
    (doc,) = load(
        """\
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
            - name: a
              image: x
            - name: b
              image: y
        """
    )
    assert doc.line_of(("spec", "containers", 1)) == 9
    assert doc.line_of(("spec", "containers", 1, "image")) == 10
    assert doc.line_of(("spec", "containers", 1, "nope", 3)) == 9


def test_yaml_syntax_error_has_file_and_line() -> None:
    with pytest.raises(ManifestError) as info:
        load(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: x
            data:
              a: b
             c: d
            """,
            source="bad.yaml",
        )
    err = info.value
    assert err.source == "bad.yaml"
    assert err.line == 7
    assert str(err).startswith("bad.yaml:7: invalid YAML:")


def test_yaml_error_in_a_later_document() -> None:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkey: [unclosed\n"
    with pytest.raises(ManifestError) as info:
        manifests.load_documents(text, "multi.yaml")
    assert info.value.line is not None
    assert info.value.line >= 5


def test_duplicate_keys_are_errors() -> None:
    with pytest.raises(ManifestError) as info:
        load(
            """\
            apiVersion: v1
            kind: Namespace
            metadata:
              name: a
              name: b
            """
        )
    assert info.value.line == 5
    assert info.value.field == "metadata.name"
    assert "already set on line 4" in info.value.message


def test_timestamps_stay_strings_and_anchors_work() -> None:
    (doc,) = load(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: x
          creationTimestamp: 2024-01-02T03:04:05Z
        data:
          day: 2024-01-02
          base: &base hello
          copy: *base
        """
    )
    assert doc.obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert doc.obj["data"] == {"day": "2024-01-02", "base": "hello", "copy": "hello"}


def test_non_string_keys_become_strings() -> None:
    (doc,) = load(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: x}
        data:
          8080: a
          true: b
        """
    )
    assert doc.obj["data"] == {"8080": "a", "true": "b"}


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(ManifestError, match="recursive YAML alias"):
        manifests.load_documents("&a [*a]\n", "r.yaml")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("- a\n- b\n", "must be a mapping", 5),
        ("just a string\n", "must be a mapping", 5),
        ("kind: Namespace\nmetadata: {name: a}\n", "apiVersion is required", 5),
        ("apiVersion: v1\nmetadata: {name: a}\n", "kind is required", 5),
        ("apiVersion: v1\nkind: Namespace\n", "metadata.name is required", 5),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {}\n", "name or generateName", 5),
        # A field that is present but wrong points at its own line.
        ("apiVersion: v1\nkind: Namespace\nmetadata: []\n", "metadata must be a mapping", 7),
        ("apiVersion: 1\nkind: Namespace\nmetadata: {name: a}\n", "non-empty string", 5),
        ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ''\n", "non-empty string", 8),
    ],
)
def test_header_errors_name_the_document_line(text: str, message: str, line: int) -> None:
    good = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n"
    with pytest.raises(ManifestError, match=message) as info:
        manifests.load_documents(good + text, "h.yaml")
    assert info.value.line == line
    assert info.value.source == "h.yaml"


def test_generate_name_is_enough() -> None:
    (doc,) = load("apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n")
    assert doc.name == "web-"


def test_list_documents_are_expanded() -> None:
    docs = load(
        """\
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: ConfigMap
            metadata:
              name: a
          - apiVersion: v1
            kind: List
            items:
              - apiVersion: v1
                kind: Secret
                metadata:
                  name: b
        ---
        apiVersion: apps/v1
        kind: DeploymentList
        items:
          - metadata:
              name: c
        """
    )
    assert [(d.kind, d.name, d.line) for d in docs] == [
        ("ConfigMap", "a", 4),
        ("Secret", "b", 11),
        ("Deployment", "c", 19),
    ]
    assert docs[0].line_of(("metadata", "name")) == 7
    assert docs[2].obj["apiVersion"] == "apps/v1"


def test_empty_list_and_bad_items() -> None:
    assert load("apiVersion: v1\nkind: List\nitems: []\n") == []
    with pytest.raises(ManifestError, match="List item must be a mapping") as info:
        load("apiVersion: v1\nkind: List\nitems:\n  - 3\n")
    assert info.value.line == 4
    with pytest.raises(ManifestError, match="kind is required") as info:
        load("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    metadata: {name: a}\n")
    assert info.value.line == 4


def test_error_rendering() -> None:
    err = ManifestError("Input should be a valid integer", source="deploy.yaml", line=12, field="spec.replicas")
    assert str(err) == "deploy.yaml:12: spec.replicas: Input should be a valid integer"
    assert str(ManifestError("boom", source="x.yaml")) == "x.yaml: boom"
    assert str(ManifestError("boom", line=3)) == "<stdin>:3: boom"
    assert str(ManifestError("boom", source="x.yaml", field="a.b")) == "x.yaml: a.b: boom"
    unknown = ManifestError('unknown field "spec.x"', source="f.yaml", line=2, field="spec.x")
    assert str(unknown) == 'f.yaml:2: unknown field "spec.x"'


def test_format_path() -> None:
    path = ("spec", "template", "spec", "containers", 0, "image")
    assert manifests.format_path(path) == "spec.template.spec.containers[0].image"
    assert (
        manifests.format_path(("metadata", "labels", "app.kubernetes.io/name"))
        == "metadata.labels[app.kubernetes.io/name]"
    )
    assert manifests.format_path(()) == ""


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    replicas: int
    name: str


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    spec: _Inner


def test_error_from_validation_points_at_the_first_field() -> None:
    (doc,) = load(
        """\
        spec:
          name: 7
          replicas: "3"
        apiVersion: v1
        kind: X
        metadata: {name: x}
        """
    )
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"spec": doc.obj["spec"]})
    err = manifests.error_from_validation(doc, info.value)
    assert err.field == "spec.replicas"
    assert err.line == 3
    assert err.message == ('Input should be a valid integer, got "3"; spec.name: Input should be a valid string, got 7')
    assert str(err).startswith("test.yaml:3: spec.replicas: Input should be a valid integer")


def test_unknown_fields_are_reported_first() -> None:
    (doc,) = load(
        """\
        spec:
          name: web
          replicas: "3"
          extra: 1
        apiVersion: v1
        kind: X
        metadata: {name: x}
        """
    )
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"spec": doc.obj["spec"]})
    err = manifests.error_from_validation(doc, info.value)
    assert (err.field, err.line) == ("spec.extra", 4)
    assert err.message == ('unknown field "spec.extra"; spec.replicas: Input should be a valid integer, got "3"')


def test_error_from_validation_missing_field_uses_parent_line() -> None:
    (doc,) = load("apiVersion: v1\nkind: X\nmetadata: {name: x}\nspec:\n  replicas: 1\n")
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"spec": doc.obj["spec"]})
    err = manifests.error_from_validation(doc, info.value)
    assert (err.field, err.line, err.message) == ("spec.name", 4, "name is required")


def test_field_error_carries_a_relative_path() -> None:
    err = manifests.FieldError(("a", 0), "bad")
    assert isinstance(err, ValueError)
    assert str(err) == "bad"
    assert err.path == ("a", 0)
    doc = Document({"a": [{}]}, "f.yaml", 1, {("a",): 2, ("a", 0): 3})
    located = doc.error("bad", ("a", 0, "b"))
    assert (located.line, located.field) == (3, "a[0].b")
