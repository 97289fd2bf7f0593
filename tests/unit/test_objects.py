"""Typed Kubernetes objects: defaults, validation and error locations like the API server."""

from __future__ import annotations

import base64
import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from funade.core import manifests, objects
from funade.core.manifests import ManifestError

pytestmark = pytest.mark.unit

SEED = Path("/work/shared/seed-examples/k8s/base")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: app
          image: nginx:1.25
          ports:
            - containerPort: 80
              name: http
"""


def deployment() -> dict[str, Any]:
    (doc,) = manifests.load_documents(DEPLOYMENT, "deploy.yaml")
    return copy.deepcopy(doc.obj)


def pod(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": body}


def parse_text(text: str, source: str = "test.yaml") -> objects.KubeObject:
    (doc,) = manifests.load_documents(textwrap.dedent(text), source)
    return objects.parse_document(doc)


def error_of(text: str, source: str = "test.yaml") -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_text(text, source)
    return info.value


def invalid(obj: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        objects.parse(obj)


# --- seed examples -------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SEED.glob("*.yaml")), ids=lambda p: p.name if isinstance(p, Path) else None)
def test_seed_examples_load(path: Path) -> None:
    if path.name == "kustomization.yaml":
        pytest.skip("a Kustomization is kustomize's input, not a Kubernetes object")
    docs = manifests.load_documents(path.read_text(), path.name)
    assert docs
    for doc in docs:
        obj = objects.parse_document(doc)
        if doc.kind in objects.TYPED_KINDS:
            assert type(obj).__name__ == doc.kind
        else:
            assert isinstance(obj, objects.GenericObject)
        assert objects.to_dict(objects.parse(objects.to_dict(obj))) == objects.to_dict(obj)


def test_seed_deployment_is_typed() -> None:
    (doc,) = manifests.load_documents((SEED / "deployment.yaml").read_text(), "deployment.yaml")
    obj = objects.parse_document(doc)
    assert isinstance(obj, objects.Deployment)
    spec = obj.spec.template.spec
    assert spec.service_account_name == "myapp"
    assert spec.security_context is not None and spec.security_context.run_as_user == 1001
    assert obj.spec.strategy.rolling_update == objects.RollingUpdateDeployment(max_surge=1, max_unavailable=0)
    (container,) = spec.containers
    assert container.startup_probe is not None
    assert container.startup_probe.failure_threshold == 30
    assert container.startup_probe.timeout_seconds == 1
    assert container.resources is not None and container.resources.limits == {
        "cpu": "500m",
        "memory": "512Mi",
    }


# --- defaults -----------------------------------------------------------------------------


def test_deployment_defaults() -> None:
    obj = objects.parse(deployment())
    assert isinstance(obj, objects.Deployment)
    spec = obj.spec
    assert spec.replicas == 1
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update == objects.RollingUpdateDeployment(max_surge="25%", max_unavailable="25%")
    assert spec.min_ready_seconds == 0
    assert spec.progress_deadline_seconds == 600
    assert spec.revision_history_limit == 10
    assert spec.paused is False
    pod_spec = spec.template.spec
    assert pod_spec.restart_policy == "Always"
    assert pod_spec.termination_grace_period_seconds == 30
    assert pod_spec.dns_policy == "ClusterFirst"
    (container,) = pod_spec.containers
    assert container.ports == [objects.ContainerPort(container_port=80, name="http")]
    assert container.ports[0].protocol == "TCP"
    assert container.image_pull_policy == "IfNotPresent"
    assert container.termination_message_path == "/dev/termination-log"
    assert obj.metadata.namespace is None


def test_partial_rolling_update_is_completed() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 2}}
    parsed = objects.parse(obj)
    assert isinstance(parsed, objects.Deployment)
    assert parsed.spec.strategy.rolling_update == objects.RollingUpdateDeployment(max_surge=2, max_unavailable="25%")
    obj["spec"]["strategy"] = {"type": "Recreate"}
    parsed = objects.parse(obj)
    assert isinstance(parsed, objects.Deployment)
    assert parsed.spec.strategy.rolling_update is None


def test_probe_defaults() -> None:
    probe = objects.Probe.model_validate({"httpGet": {"port": 8080}})
    assert probe.initial_delay_seconds == 0
    assert probe.period_seconds == 10
    assert probe.timeout_seconds == 1
    assert probe.success_threshold == 1
    assert probe.failure_threshold == 3
    assert probe.termination_grace_period_seconds is None
    assert probe.http_get is not None
    assert (probe.http_get.path, probe.http_get.scheme) == ("/", "HTTP")
    # SetDefaults_Probe: an explicit 0 means "use the default".
    zeroed = objects.Probe.model_validate({"tcpSocket": {"port": "http"}, "periodSeconds": 0, "timeoutSeconds": 0})
    assert (zeroed.period_seconds, zeroed.timeout_seconds) == (10, 1)


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("app", "Always"),
        ("app:latest", "Always"),
        ("app:1.0", "IfNotPresent"),
        ("app@sha256:" + "a" * 64, "IfNotPresent"),
        ("app:latest@sha256:" + "a" * 64, "Always"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:1.0", "IfNotPresent"),
        ("ghcr.io/org/app:v1", "IfNotPresent"),
        ("registry.example.com:443/org/app", "Always"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    container = objects.Container.model_validate({"name": "c", "image": image})
    assert container.image_pull_policy == policy
    assert objects.default_pull_policy(image) == policy


def test_explicit_image_pull_policy_wins() -> None:
    container = objects.Container.model_validate({"name": "c", "image": "app", "imagePullPolicy": "Never"})
    assert container.image_pull_policy == "Never"


def test_split_image() -> None:
    assert objects.split_image("localhost:5000/app") == ("localhost:5000/app", None, None)
    assert objects.split_image("a/b:c@sha256:x") == ("a/b", "c", "sha256:x")


def test_python_construction_by_field_name() -> None:
    container = objects.Container(name="c", image="app:latest")
    assert container.image_pull_policy == "Always"
    strategy = objects.DeploymentStrategy()
    assert strategy.rolling_update == objects.RollingUpdateDeployment()


def test_volume_without_source_is_empty_dir() -> None:
    volume = objects.Volume.model_validate({"name": "scratch"})
    assert volume.empty_dir == objects.EmptyDirVolumeSource()
    assert volume.source == "emptyDir"
    cm = objects.Volume.model_validate({"name": "cfg", "configMap": {"name": "x"}})
    assert cm.config_map is not None and cm.config_map.default_mode == 0o644
    assert cm.source == "configMap"
    loose = objects.Volume.model_validate({"name": "d", "downwardAPI": {"items": []}})
    assert loose.source == "downwardAPI"


def test_pod_requests_default_to_limits_but_templates_do_not() -> None:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    parsed = objects.parse(pod(containers=[{"name": "a", "image": "x:1", "resources": resources}]))
    assert isinstance(parsed, objects.Pod)
    container_resources = parsed.spec.containers[0].resources
    assert container_resources is not None
    assert container_resources.requests == {"cpu": "500m", "memory": "1Gi"}
    template = deployment()
    template["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 2}}
    parsed_deployment = objects.parse(template)
    assert isinstance(parsed_deployment, objects.Deployment)
    template_resources = parsed_deployment.spec.template.spec.containers[0].resources
    assert template_resources is not None
    assert template_resources.requests is None
    assert template_resources.limits == {"cpu": "2"}


# --- Secret and ConfigMap ---------------------------------------------------------------


def test_secret_string_data_is_merged_into_data() -> None:
    secret = parse_text(
        """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: s
        data:
          a: YWFh
          b: b2xk
        stringData:
          b: new
          c: "héllo"
        """
    )
    assert isinstance(secret, objects.Secret)
    assert secret.type == "Opaque"
    assert secret.data == {
        "a": "YWFh",
        "b": base64.b64encode(b"new").decode(),
        "c": base64.b64encode("héllo".encode()).decode(),
    }
    assert secret.decoded() == {"a": b"aaa", "b": b"new", "c": "héllo".encode()}
    stored = objects.to_dict(secret)
    assert "stringData" not in stored
    assert stored["type"] == "Opaque"


def test_secret_line_wrapped_base64_is_unwrapped() -> None:
    secret = objects.parse({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "YW\nFh\n"}})
    assert isinstance(secret, objects.Secret)
    assert secret.data == {"k": "YWFh"}


def test_secret_data_must_be_base64() -> None:
    err = error_of(
        """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: s
        data:
          good: YWFh
          bad: "not base64!"
        """
    )
    assert (err.field, err.line) == ("data.bad", 7)
    assert "base64" in err.message


def test_secret_type_requirements() -> None:
    invalid(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "t"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": "x"},
        },
        "tls.key",
    )


def test_configmap_values_must_be_strings() -> None:
    err = error_of(
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: c
        data:
          port: 8080
        """
    )
    assert (err.field, err.line) == ("data.port", 6)
    assert err.message == "Input should be a valid string, got 8080"


def test_configmap_keys() -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    invalid({**base, "data": {"bad key": "x"}}, "valid config key")
    invalid({**base, "data": {"a": "x"}, "binaryData": {"a": "eA=="}}, "duplicate of key")
    ok = objects.parse({**base, "data": {"app.properties": "x"}, "binaryData": {"b": "eA=="}})
    assert isinstance(ok, objects.ConfigMap)


# --- Deployment validation -------------------------------------------------------------


def test_selector_must_match_template_labels() -> None:
    text = DEPLOYMENT.replace(
        "      labels:\n        app: web\n    spec:", "      labels:\n        app: api\n    spec:"
    )
    err = error_of(text)
    assert err.field == "spec.template.metadata.labels"
    assert err.message == "selector does not match template labels"
    assert err.line == 13


def test_selector_is_required_and_not_empty() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    invalid(obj, "selector")
    obj["spec"]["selector"] = {}
    invalid(obj, "empty selector is invalid for deployment")


@pytest.mark.parametrize(
    ("rolling", "message"),
    [
        ({"maxSurge": 0, "maxUnavailable": 0}, "may not be 0 when `maxSurge` is 0"),
        ({"maxSurge": "0%", "maxUnavailable": 0}, "may not be 0 when `maxSurge` is 0"),
        ({"maxSurge": "0%", "maxUnavailable": "0%"}, "may not be 0 when `maxSurge` is 0"),
        ({"maxSurge": "25", "maxUnavailable": 1}, "percent string"),
        ({"maxSurge": "25 %"}, "percent string"),
        ({"maxSurge": -1}, "greater than or equal to 0"),
        ({"maxUnavailable": "101%"}, "must not be greater than 100%"),
        ({"maxSurge": True}, "integer or a string"),
    ],
)
def test_rolling_update_validation(rolling: dict[str, Any], message: str) -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
    invalid(obj, message)


def test_zero_zero_rolling_update_error_location() -> None:
    text = DEPLOYMENT.replace(
        "spec:\n  selector:",
        "spec:\n  strategy:\n    rollingUpdate:\n      maxSurge: 0\n      maxUnavailable: 0\n  selector:",
    )
    err = error_of(text)
    assert err.field == "spec.strategy.rollingUpdate.maxUnavailable"
    assert err.line == 11
    assert str(err) == ("test.yaml:11: spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0")


def test_surge_percent_over_100_is_allowed() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": "200%", "maxUnavailable": 0}}
    assert isinstance(objects.parse(obj), objects.Deployment)


def test_recreate_forbids_rolling_update() -> None:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    invalid(obj, "may not be specified when strategy `type` is 'Recreate'")


def test_template_restart_policy_must_be_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    invalid(obj, 'Unsupported value: "Never": supported values: "Always"')


def test_progress_deadline_must_exceed_min_ready() -> None:
    obj = deployment()
    obj["spec"]["minReadySeconds"] = 600
    invalid(obj, "must be greater than minReadySeconds")


def test_replicaset() -> None:
    obj = deployment()
    obj["kind"] = "ReplicaSet"
    del obj["spec"]["template"]["spec"]["containers"][0]["ports"]
    parsed = objects.parse(obj)
    assert isinstance(parsed, objects.ReplicaSet)
    assert parsed.spec.replicas == 1
    assert parsed.spec.min_ready_seconds == 0
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    invalid(obj, "selector does not match template labels")


# --- unknown fields, types and error locations ---------------------------------------


def test_unknown_field_is_reported_with_path_and_line() -> None:
    text = DEPLOYMENT.replace("image: nginx:1.25", "imagee: nginx:1.25")
    err = error_of(text, "deploy.yaml")
    assert err.source == "deploy.yaml"
    assert err.line == 18
    assert err.field == "spec.template.spec.containers[0].imagee"
    assert err.message == (
        'unknown field "spec.template.spec.containers[0].imagee"; '
        "spec.template.spec.containers[0].image: image is required"
    )
    assert str(err).startswith('deploy.yaml:18: unknown field "spec.template.spec.containers[0].imagee"')


def test_single_unknown_field() -> None:
    text = DEPLOYMENT.replace("  selector:", "  replica: 3\n  selector:")
    err = error_of(text, "deploy.yaml")
    assert str(err) == 'deploy.yaml:8: unknown field "spec.replica"'


def test_snake_case_names_are_unknown_fields_in_manifests() -> None:
    text = DEPLOYMENT.replace("  selector:", "  min_ready_seconds: 3\n  selector:")
    err = error_of(text)
    assert err.message == 'unknown field "spec.min_ready_seconds"'


def test_missing_image() -> None:
    text = DEPLOYMENT.replace("          image: nginx:1.25\n", "")
    err = error_of(text)
    assert (err.field, err.message, err.line) == (
        "spec.template.spec.containers[0].image",
        "image is required",
        17,
    )
    invalid(pod(containers=[{"name": "a", "image": ""}]), "image is required")


def test_wrong_types_are_rejected_like_the_api_server() -> None:
    text = DEPLOYMENT.replace("spec:\n  selector:", 'spec:\n  replicas: "3"\n  selector:')
    err = error_of(text, "deploy.yaml")
    assert str(err) == ('deploy.yaml:8: spec.replicas: Input should be a valid integer, got "3"')
    invalid(
        pod(
            containers=[
                {
                    "name": "a",
                    "image": "x",
                    "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": "true"}],
                }
            ],
            volumes=[{"name": "v"}],
        ),
        "valid boolean",
    )


def test_literal_error() -> None:
    err = error_of(
        """\
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          restartPolicy: Sometimes
          containers:
            - name: a
              image: x
        """
    )
    assert err.field == "spec.restartPolicy"
    assert err.line == 6
    assert "'Always', 'OnFailure' or 'Never'" in err.message
    assert err.message.endswith('got "Sometimes"')


def test_unknown_api_version_of_a_known_kind() -> None:
    obj = deployment()
    obj["apiVersion"] = "apps/v1beta1"
    with pytest.raises(ValueError, match=r"Deployment: unknown apiVersion apps/v1beta1 \(expected apps/v1\)"):
        objects.parse(obj)
    err = error_of(DEPLOYMENT.replace("apps/v1", "v1"))
    assert (err.field, err.line) == ("apiVersion", 1)
    assert str(err) == "test.yaml:1: Deployment: unknown apiVersion v1 (expected apps/v1)"
    obj["apiVersion"] = "extensions/v1beta1"
    invalid(obj, "unknown apiVersion")


def test_custom_resource_sharing_a_kind_name_is_generic() -> None:
    obj = deployment()
    obj["apiVersion"] = "example.com/v1"
    obj["spec"]["anything"] = True
    assert isinstance(objects.parse(obj), objects.GenericObject)


# --- names and pod rules -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["My-App", "app_1", "-app", "a" * 254, "app."])
def test_invalid_object_names(name: str) -> None:
    obj = deployment()
    obj["metadata"]["name"] = name
    invalid(obj, "RFC 1123 subdomain|no more than 253")


def test_namespace_names_are_labels() -> None:
    ok = objects.parse({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    assert isinstance(ok, objects.Namespace)
    invalid({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}, "RFC 1123 label")


def test_metadata_namespace_and_labels_are_validated() -> None:
    obj = deployment()
    obj["metadata"]["namespace"] = "Bad_NS"
    invalid(obj, "RFC 1123 label")
    obj = deployment()
    obj["metadata"]["labels"] = {"app": "has space"}
    invalid(obj, "invalid label value")


def test_generic_objects_keep_names_kubernetes_allows() -> None:
    role = objects.parse(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:controller:web"},
            "rules": [],
        }
    )
    assert isinstance(role, objects.GenericObject)
    assert role.name == "system:controller:web"
    invalid({"apiVersion": "x/v1", "kind": "Y", "metadata": {"name": "a/b"}}, "may not contain")


def test_container_names_unique_across_init_containers() -> None:
    err = error_of(
        """\
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          initContainers:
            - name: app
              image: busybox
          containers:
            - name: app
              image: nginx
        """
    )
    assert err.field == "spec.containers[0].name"
    assert err.line == 10
    assert 'duplicate container name "app"' in err.message


def test_container_name_is_a_label() -> None:
    invalid(pod(containers=[{"name": "App", "image": "x"}]), "RFC 1123 label")


def test_volume_mounts_must_refer_to_declared_volumes() -> None:
    err = error_of(
        """\
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          volumes:
            - name: tmp
          containers:
            - name: app
              image: nginx
              volumeMounts:
                - name: tmp
                  mountPath: /tmp
                - name: cache
                  mountPath: /cache
        """
    )
    assert err.field == "spec.containers[0].volumeMounts[1].name"
    assert err.line == 14
    assert 'volume "cache"' in err.message


def test_volume_rules() -> None:
    invalid(
        pod(volumes=[{"name": "v", "emptyDir": {}, "configMap": {"name": "c"}}]),
        "may not specify more than 1 volume type",
    )
    invalid(pod(volumes=[{"name": "v"}, {"name": "v"}]), 'duplicate volume name "v"')
    invalid(pod(volumes=[{"name": "v", "emptyDir": {"medium": "Disk"}}]), "Unsupported value")
    invalid(pod(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "lots"}}]), "invalid quantity")
    invalid(
        pod(volumes=[{"name": "v", "secret": {"secretName": "s", "defaultMode": 0o1777}}]), "less than or equal to 511"
    )


def test_port_names_unique_within_a_container() -> None:
    ports = [{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]
    invalid(pod(containers=[{"name": "a", "image": "x", "ports": ports}]), "duplicate port name")
    invalid(
        pod(containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}]),
        "greater than or equal to 1",
    )
    invalid(
        pod(containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 1, "name": "HTTP"}]}]),
        "lowercase",
    )


def test_duplicate_host_ports() -> None:
    containers = [
        {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
        {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]},
    ]
    invalid(pod(containers=containers), "duplicate host port")


def test_env_rules() -> None:
    invalid(pod(containers=[{"name": "a", "image": "x", "env": [{"name": ""}]}]), "name is required")
    invalid(
        pod(containers=[{"name": "a", "image": "x", "env": [{"name": "1X", "value": "v"}]}]),
        "environment variable name",
    )
    invalid(
        pod(
            containers=[
                {
                    "name": "a",
                    "image": "x",
                    "env": [
                        {
                            "name": "X",
                            "valueFrom": {
                                "secretKeyRef": {"name": "s", "key": "k"},
                                "configMapKeyRef": {"name": "c", "key": "k"},
                            },
                        }
                    ],
                }
            ]
        ),
        "more than one field",
    )
    invalid(
        pod(containers=[{"name": "a", "image": "x", "envFrom": [{"prefix": "P_"}]}]),
        "configMapRef",
    )


def test_resources_are_quantities() -> None:
    def with_resources(resources: dict[str, Any]) -> dict[str, Any]:
        return pod(containers=[{"name": "a", "image": "x", "resources": resources}])

    invalid(with_resources({"limits": {"cpu": "lots"}}), "invalid quantity")
    invalid(with_resources({"limits": {"cpu": "-1"}}), "greater than or equal to 0")
    invalid(with_resources({"limits": {"gpu": "1"}}), "standard resource")
    invalid(
        with_resources({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}),
        "must be less than or equal to cpu limit of 1",
    )
    ok = objects.parse(with_resources({"limits": {"cpu": 0.5, "nvidia.com/gpu": 1}}))
    assert isinstance(ok, objects.Pod)
    resources = ok.spec.containers[0].resources
    assert resources is not None and resources.limits == {"cpu": "0.5", "nvidia.com/gpu": "1"}


def test_probe_rules() -> None:
    def with_probe(field: str, probe: dict[str, Any]) -> dict[str, Any]:
        return pod(containers=[{"name": "a", "image": "x", field: probe}])

    invalid(with_probe("readinessProbe", {"periodSeconds": 5}), "must specify a handler type")
    invalid(
        with_probe("readinessProbe", {"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}),
        "more than 1 handler type",
    )
    invalid(
        with_probe("livenessProbe", {"exec": {"command": ["true"]}, "successThreshold": 2}),
        "must be 1",
    )
    invalid(with_probe("readinessProbe", {"httpGet": {"port": 70000}}), "between 1 and 65535")
    ok = objects.parse(with_probe("readinessProbe", {"exec": {"command": ["true"]}, "successThreshold": 2}))
    assert isinstance(ok, objects.Pod)


def test_lifecycle_handlers() -> None:
    lifecycle = {"preStop": {"sleep": {"seconds": 5}}, "postStart": {"exec": {"command": ["x"]}}}
    ok = objects.parse(pod(containers=[{"name": "a", "image": "x", "lifecycle": lifecycle}]))
    assert isinstance(ok, objects.Pod)
    invalid(
        pod(containers=[{"name": "a", "image": "x", "lifecycle": {"preStop": {}}}]),
        "must specify a handler type",
    )


def test_sidecars_and_init_containers() -> None:
    sidecar = {
        "name": "proxy",
        "image": "envoy:1",
        "restartPolicy": "Always",
        "readinessProbe": {"tcpSocket": {"port": 15000}},
    }
    ok = objects.parse(pod(initContainers=[sidecar]))
    assert isinstance(ok, objects.Pod)
    assert [c.name for c in ok.spec.all_containers] == ["proxy", "app"]
    invalid(
        pod(containers=[{"name": "a", "image": "x", "restartPolicy": "Always"}]),
        "non-init containers",
    )
    plain_init = {k: v for k, v in sidecar.items() if k != "restartPolicy"}
    invalid(pod(initContainers=[plain_init]), "without restartPolicy=Always")


def test_security_context() -> None:
    sc = {"seccompProfile": {"type": "Localhost"}}
    invalid(pod(securityContext=sc), "must be set when seccomp type is Localhost")
    sc = {"privileged": True, "allowPrivilegeEscalation": False}
    invalid(pod(containers=[{"name": "a", "image": "x", "securityContext": sc}]), "privileged")
    ok = objects.parse(
        pod(
            securityContext={
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "runAsNonRoot": True,
                "fsGroup": 2000,
                "supplementalGroups": [3000],
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                "fsGroupChangePolicy": "OnRootMismatch",
            },
            containers=[
                {
                    "name": "a",
                    "image": "x",
                    "securityContext": {
                        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        )
    )
    assert isinstance(ok, objects.Pod)


def test_every_pod_spec_field_of_kubernetes_1_30_is_accepted() -> None:
    spec = {
        "volumes": [
            {"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {
                "name": "c",
                "configMap": {"name": "cm", "items": [{"key": "k", "path": "p", "mode": 0o400}], "optional": True},
            },
            {"name": "s", "secret": {"secretName": "sec", "defaultMode": 0o600}},
            {"name": "h", "hostPath": {"path": "/data", "type": "DirectoryOrCreate"}},
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
            {
                "name": "dapi",
                "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
            },
            {"name": "csi", "csi": {"driver": "x"}},
            {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
        ],
        "initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"]}],
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "command": ["nginx"],
                "args": ["-g", "daemon off;"],
                "workingDir": "/",
                "ports": [
                    {"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080, "hostIP": "127.0.0.1"}
                ],
                "envFrom": [
                    {"prefix": "CM_", "configMapRef": {"name": "cm", "optional": True}},
                    {"secretRef": {"name": "sec"}},
                ],
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                ],
                "resources": {
                    "limits": {"cpu": "1", "memory": "1Gi"},
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "claims": [{"name": "gpu"}],
                },
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "volumeMounts": [
                    {"name": "e", "mountPath": "/e", "readOnly": True, "subPath": "x", "mountPropagation": "None"},
                    {"name": "c", "mountPath": "/c", "subPathExpr": "$(A)", "recursiveReadOnly": "Disabled"},
                ],
                "volumeDevices": [{"name": "pvc", "devicePath": "/dev/xvda"}],
                "livenessProbe": {
                    "httpGet": {
                        "path": "/healthz",
                        "port": "http",
                        "host": "localhost",
                        "scheme": "HTTPS",
                        "httpHeaders": [{"name": "X", "value": "y"}],
                    },
                    "terminationGracePeriodSeconds": 5,
                },
                "readinessProbe": {"grpc": {"port": 9000, "service": "health"}},
                "startupProbe": {"tcpSocket": {"port": 80, "host": "127.0.0.1"}, "failureThreshold": 30},
                "lifecycle": {"preStop": {"httpGet": {"port": 80}}, "postStart": {"tcpSocket": {"port": 80}}},
                "terminationMessagePath": "/tmp/term",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "imagePullPolicy": "Always",
                "securityContext": {
                    "privileged": False,
                    "procMount": "Default",
                    "seLinuxOptions": {"level": "s0"},
                    "windowsOptions": {"runAsUserName": "x"},
                    "appArmorProfile": {"type": "RuntimeDefault"},
                    "runAsUser": 1,
                    "runAsGroup": 1,
                },
                "stdin": False,
                "stdinOnce": False,
                "tty": False,
            }
        ],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 10,
        "activeDeadlineSeconds": 3600,
        "dnsPolicy": "None",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "serviceAccountName": "sa",
        "serviceAccount": "sa",
        "automountServiceAccountToken": False,
        "nodeName": "node-1",
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": True,
        "securityContext": {"runAsNonRoot": True},
        "imagePullSecrets": [{"name": "regcred"}],
        "hostname": "web-0",
        "subdomain": "web",
        "affinity": {"nodeAffinity": {}},
        "schedulerName": "my-scheduler",
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
        "priorityClassName": "high",
        "priority": 1000,
        "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": [], "options": [{"name": "ndots", "value": "2"}]},
        "readinessGates": [{"conditionType": "example.com/ready"}],
        "runtimeClassName": "runc",
        "enableServiceLinks": False,
        "preemptionPolicy": "Never",
        "overhead": {"cpu": "10m"},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        "setHostnameAsFQDN": True,
        "os": {"name": "linux"},
        "hostUsers": True,
        "schedulingGates": [{"name": "gate"}],
        "resourceClaims": [{"name": "gpu", "source": {"resourceClaimName": "gpu"}}],
    }
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "full"}, "spec": spec}
    parsed = objects.parse(obj)
    assert isinstance(parsed, objects.Pod)
    assert parsed.spec.host_pid is False
    assert parsed.spec.set_hostname_as_fqdn is True
    stored = objects.to_dict(parsed)
    # Everything given survives the round trip under its Kubernetes name.
    for key, value in spec.items():
        assert stored["spec"][key] == value or key in ("volumes", "containers", "initContainers")
    assert stored["spec"]["containers"][0]["ports"][0]["hostIP"] == "127.0.0.1"
    assert "downwardAPI" in stored["spec"]["volumes"][6]
    assert objects.parse(stored) == parsed


def test_object_meta_accepts_what_real_manifests_carry() -> None:
    meta = {
        "name": "web",
        "namespace": "prod",
        "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "uid": "0b5d",
        "resourceVersion": "123",
        "generation": 4,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "deletionTimestamp": None,
        "deletionGracePeriodSeconds": 30,
        "selfLink": "/apis/apps/v1/x",
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": "u",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "finalizers": ["example.com/f"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
        "generateName": "web-",
    }
    obj = deployment()
    obj["metadata"] = {**meta, "labels": {**meta["labels"], "app": "web"}}
    parsed = objects.parse(obj)
    assert isinstance(parsed, objects.Deployment)
    assert parsed.metadata.owner_references is not None
    assert parsed.metadata.owner_references[0].controller is True


# --- kinds and serialization -------------------------------------------------------------


def test_runnable_kinds() -> None:
    kinds = sorted(objects.RUNNABLE_KINDS)
    assert kinds == [
        "AnalysisRun",
        "AnalysisTemplate",
        "Application",
        "ApplicationSet",
        "ClusterAnalysisTemplate",
        "ConfigMap",
        "CronJob",
        "Deployment",
        "DestinationRule",
        "HorizontalPodAutoscaler",
        "Job",
        "Namespace",
        "Pod",
        "ReplicaSet",
        "Rollout",
        "Secret",
        "Service",
        "TrafficSplit",
        "VirtualService",
    ]
    assert objects.TYPED_KINDS["Deployment"] == "apps/v1"


def test_generic_object_keeps_everything() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": None}]},
        "status": None,
    }
    parsed = objects.parse(service)
    assert isinstance(parsed, objects.GenericObject)
    assert parsed.kind == "Service"
    assert parsed.spec == service["spec"]
    assert parsed.rest == {"spec": service["spec"], "status": None}
    assert objects.to_dict(parsed) == service
    assert list(objects.to_dict(parsed)) == ["apiVersion", "kind", "metadata", "spec", "status"]


def test_to_dict_drops_none_keeps_defaults_and_round_trips() -> None:
    parsed = objects.parse(deployment())
    stored = objects.to_dict(parsed)
    assert list(stored) == ["apiVersion", "kind", "metadata", "spec"]
    assert "status" not in stored
    assert "namespace" not in stored["metadata"]
    assert stored["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    container = stored["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in container
    assert objects.parse(stored) == parsed
    assert objects.to_dict(objects.parse(stored)) == stored


def test_models_are_frozen() -> None:
    parsed = objects.parse(deployment())
    with pytest.raises(ValidationError):
        parsed.spec.replicas = 5  # type: ignore[misc]
