"""The OCI model: references, digests, manifests and the referrers tag schema."""

from __future__ import annotations

import json

import pytest

from funade.core import oci

pytestmark = pytest.mark.unit

SHA = "sha256:" + "ab" * 32
CONFIG = {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + "11" * 32, "size": 7}
LAYER = {"mediaType": oci.OCI_LAYER_GZIP, "digest": "sha256:" + "22" * 32, "size": 1024}


def image(**extra: object) -> bytes:
    body: dict[str, object] = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": CONFIG, "layers": [LAYER]}
    body.update(extra)
    return json.dumps(body, indent=3).encode()


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1", None),
        ("127.0.0.1:5000/app@" + SHA, "127.0.0.1:5000", "app", None, SHA),
        ("ghcr.io/org/a/b/c:t@" + SHA, "ghcr.io", "org/a/b/c", "t", SHA),
        ("[::1]:5000/app:v2", "[::1]:5000", "app", "v2", None),
        ("registry.example.com/a__b/c-d.e_f:T_1.x-y", "registry.example.com", "a__b/c-d.e_f", "T_1.x-y", None),
    ],
)
def test_parse_reference(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = oci.parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert oci.parse_reference(str(ref)) == ref  # str() round-trips


def test_reference_str_name_and_what_to_ask_for() -> None:
    ref = oci.parse_reference("nginx")
    assert str(ref) == "docker.io/library/nginx"
    assert ref.name == "docker.io/library/nginx"
    assert ref.reference == "latest"
    assert oci.parse_reference("a.io/x:1").reference == "1"
    pinned = oci.parse_reference(f"a.io/x:1@{SHA}")
    assert pinned.reference == SHA
    assert str(pinned) == f"a.io/x:1@{SHA}"


def test_default_registry_replaces_docker_hub_without_library_prefix() -> None:
    ref = oci.parse_reference("app:1", default_registry="127.0.0.1:5000")
    assert (ref.registry, ref.repository) == ("127.0.0.1:5000", "app")
    # An explicit registry still wins.
    assert oci.parse_reference("ghcr.io/o/app", default_registry="127.0.0.1:5000").registry == "ghcr.io"
    assert oci.parse_reference("app", default_registry="docker.io").repository == "library/app"
    with pytest.raises(oci.InvalidReference, match="invalid default registry"):
        oci.parse_reference("app", default_registry="bad registry")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("Nginx", "must be lowercase"),
        ("ghcr.io/Org/app", "must be lowercase"),
        ("app:", "invalid tag ''"),
        ("app:-bad", "invalid tag '-bad'"),
        ("app:" + "t" * 129, "invalid tag"),
        ("app@sha256:abc", "64 lowercase hex"),
        ("app@nodigest", "expected algorithm:hex"),
        ("x/a..b", "invalid repository path component 'a..b'"),
        ("a..b/app", "invalid registry 'a..b'"),
        ("ghcr.io/", "repository name is empty"),
        ("ghcr.io//app", "invalid repository path component ''"),
        ("-host.io/app", "invalid registry '-host.io'"),
        ("app name", "whitespace"),
        ("a.io/" + "x" * 260, "longer than 255"),
    ],
)
def test_invalid_references_name_the_text_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(oci.InvalidReference) as caught:
        oci.parse_reference(text)
    assert problem in str(caught.value)
    assert repr(text) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_validate_repository_and_tag() -> None:
    assert oci.validate_repository("team/app") == "team/app"
    assert oci.validate_tag("v1.2.3") == "v1.2.3"
    with pytest.raises(oci.InvalidReference):
        oci.validate_repository("../etc")
    with pytest.raises(oci.InvalidReference):
        oci.validate_tag("a/b")


# -- digests ------------------------------------------------------------------------------------


def test_digest_of_and_validate_digest() -> None:
    assert oci.digest_of(b"{}") == oci.EMPTY_DIGEST
    assert oci.digest_of(b"", "sha512").startswith("sha512:")
    assert len(oci.digest_of(b"", "sha512")) == len("sha512:") + 128
    assert oci.validate_digest(SHA) == SHA
    assert oci.validate_digest("blake3:" + "0" * 64) == "blake3:" + "0" * 64  # unknown algorithms: grammar only
    for bad in (
        "sha256:" + "AB" * 32,
        "sha256:" + "a" * 63,
        "sha512:" + "a" * 64,
        "sha256",
        ":abc",
        "SHA256:" + "a" * 64,
    ):
        with pytest.raises(oci.InvalidDigest):
            oci.validate_digest(bad)
    with pytest.raises(oci.InvalidDigest, match="unsupported digest algorithm"):
        oci.digest_of(b"", "md5")


# -- manifests ----------------------------------------------------------------------------------


def test_parse_image_manifest_keeps_the_bytes() -> None:
    raw = image(annotations={"org.opencontainers.image.revision": "abc"})
    manifest = oci.parse_manifest(raw, oci.OCI_MANIFEST)
    assert manifest.raw is raw
    assert manifest.digest == oci.digest_of(raw)
    assert manifest.media_type == oci.OCI_MANIFEST
    assert not manifest.is_index
    assert manifest.config == oci.Descriptor(oci.OCI_CONFIG, CONFIG["digest"], 7)  # type: ignore[arg-type]
    assert [layer.size for layer in manifest.layers] == [1024]
    assert manifest.annotations == {"org.opencontainers.image.revision": "abc"}
    assert manifest.descriptor() == oci.Descriptor(oci.OCI_MANIFEST, manifest.digest, len(raw))
    assert oci.blobs_of(manifest) == (manifest.config, *manifest.layers)
    assert oci.children_of(manifest) == ()


def test_parse_index_with_platforms() -> None:
    child = {
        "mediaType": oci.OCI_MANIFEST,
        "digest": SHA,
        "size": 500,
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["x"]},
    }
    raw = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [child]}).encode()
    index = oci.parse_manifest(raw, None)
    assert index.is_index
    assert oci.blobs_of(index) == ()
    (only,) = oci.children_of(index)
    assert only.platform == oci.Platform("linux", "arm64", "v8", None, ("x",))
    assert str(only.platform) == "linux/arm64/v8"
    assert only.to_json() == child


def test_docker_manifest_list_and_manifest() -> None:
    listing = {"schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST_LIST, "manifests": []}
    assert oci.parse_manifest(json.dumps(listing).encode(), oci.DOCKER_MANIFEST_LIST).is_index
    docker = {
        "schemaVersion": 2,
        "mediaType": oci.DOCKER_MANIFEST,
        "config": {**CONFIG, "mediaType": oci.DOCKER_CONFIG},
        "layers": [{**LAYER, "mediaType": oci.DOCKER_LAYER}],
    }
    assert oci.parse_manifest(json.dumps(docker).encode(), "application/json").media_type == oci.DOCKER_MANIFEST


@pytest.mark.parametrize("header", [None, "", "application/json", "application/octet-stream", "text/plain"])
def test_media_type_comes_from_the_body_when_the_header_says_nothing(header: str | None) -> None:
    assert oci.parse_manifest(image(), header).media_type == oci.OCI_MANIFEST


def test_media_type_inferred_from_shape_without_mediatype() -> None:
    raw = json.dumps({"schemaVersion": 2, "config": CONFIG, "layers": []}).encode()
    assert oci.parse_manifest(raw).media_type == oci.OCI_MANIFEST
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert oci.parse_manifest(raw).media_type == oci.OCI_INDEX
    with pytest.raises(oci.InvalidManifest, match="cannot tell"):
        oci.parse_manifest(b'{"schemaVersion": 2}')


def test_header_parameters_are_ignored() -> None:
    assert oci.parse_manifest(image(), oci.OCI_MANIFEST + "; charset=utf-8").media_type == oci.OCI_MANIFEST


def test_subject_and_artifact_type() -> None:
    subject = {"mediaType": oci.OCI_MANIFEST, "digest": SHA, "size": 10}
    raw = image(artifactType="application/vnd.example.sbom", subject=subject, annotations={"a": "b"})
    manifest = oci.parse_manifest(raw, oci.OCI_MANIFEST)
    assert manifest.subject == oci.Descriptor(oci.OCI_MANIFEST, SHA, 10)
    referrer = oci.as_referrer(manifest)
    assert referrer == oci.Descriptor(
        oci.OCI_MANIFEST, manifest.digest, len(raw), {"a": "b"}, "application/vnd.example.sbom"
    )
    # Without artifactType, the config's media type stands in.
    assert oci.as_referrer(oci.parse_manifest(image(subject=subject))).artifact_type == oci.OCI_CONFIG


@pytest.mark.parametrize(
    ("raw", "header", "message"),
    [
        (b"not json", None, "not JSON"),
        (b"[]", None, "expected a JSON object"),
        (json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode(), None, "schema 1 is not supported"),
        (b"{}", oci.DOCKER_SCHEMA1[1], "schema 1 is not supported"),
        (image(), oci.OCI_INDEX, "Content-Type says"),
        (image(mediaType="application/vnd.oci.artifact.manifest.v1+json"), None, "unsupported manifest media type"),
        (image(schemaVersion=3), None, "schemaVersion must be 2"),
        (image(layers=[{**LAYER, "size": -1}]), None, "layers[0]: size must be a non-negative integer"),
        (image(layers=[{**LAYER, "size": True}]), None, "size must be"),
        (image(layers=[{**LAYER, "digest": "sha256:xyz"}]), None, "layers[0]: invalid digest"),
        (image(config=None), None, "config: expected a JSON object"),
        (image(layers={}), None, "layers must be a list"),
        (image(annotations={"a": 1}), None, "values must be strings"),
        (json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX}).encode(), None, "manifests is missing"),
    ],
)
def test_invalid_manifests(raw: bytes, header: str | None, message: str) -> None:
    with pytest.raises(oci.InvalidManifest, match=message.replace("[", r"\[").replace("]", r"\]")):
        oci.parse_manifest(raw, header)


def test_blobs_of_skips_foreign_layers() -> None:
    foreign = {**LAYER, "digest": "sha256:" + "33" * 32, "urls": ["https://example.com/layer"]}
    manifest = oci.parse_manifest(image(layers=[LAYER, foreign]))
    assert [b.digest for b in oci.blobs_of(manifest)] == [CONFIG["digest"], LAYER["digest"]]
    assert manifest.layers[1].urls == ("https://example.com/layer",)


# -- referrers tag schema -----------------------------------------------------------------------


def test_referrers_tag_and_index_bytes() -> None:
    assert oci.referrers_tag(SHA) == "sha256-" + "ab" * 32
    assert oci.referrers_tag("sha512:" + "c" * 128) == "sha512-" + "c" * 64  # truncated to 64
    oci.validate_tag(oci.referrers_tag(SHA))
    descriptor = oci.Descriptor(oci.OCI_MANIFEST, SHA, 3, {"k": "v"}, "application/x")
    raw = oci.index_bytes([descriptor], {"note": "n"})
    index = oci.parse_manifest(raw, oci.OCI_INDEX)
    assert index.manifests == (descriptor,)
    assert index.annotations == {"note": "n"}
