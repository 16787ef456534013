"""`deploy/kubernetes/`: every manifest valid against Kubernetes' OpenAPI schemas (kubernetes-validate,
offline), and the properties a payment service needs from its pods."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.deploy.test_compose import payments_setting_exists

MANIFESTS = sorted((REPO_ROOT / "deploy" / "kubernetes").glob("*.yaml"))
# The Kubernetes release whose schemas the manifests are checked against (shipped by kubernetes-validate).
KUBERNETES_VERSION = "1.30.0"
UVICORN_DRAIN_S = 30  # `timeout_graceful_shutdown` in api/server.py


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


def deployment(component: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind("Deployment") if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return found


class TestKubernetesManifests:
    @pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: Path(path).name)
    def test_each_manifest_is_valid_against_the_kubernetes_schemas(self, path: Path) -> None:
        for document in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)

    def test_the_set_holds_what_a_deployment_needs(self) -> None:
        kinds = sorted(doc["kind"] for doc in documents())
        assert kinds == sorted(
            [
                "ConfigMap",
                "Secret",
                "Deployment",
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
            ]
        )

    def test_the_api_is_probed_on_healthz_and_readyz_and_drains_before_it_is_killed(self) -> None:
        pod = deployment("api")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod["terminationGracePeriodSeconds"] > pre_stop_s + UVICORN_DRAIN_S

    @pytest.mark.parametrize("component", ["api", "worker"])
    def test_pods_run_unprivileged_with_resources_and_read_only_roots(self, component: str) -> None:
        pod = deployment(component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]

    def test_the_service_pdb_and_hpa_point_at_the_api(self) -> None:
        labels = deployment("api")["spec"]["template"]["metadata"]["labels"]
        (service,) = of_kind("Service")
        assert service["spec"]["selector"] == labels
        pdbs = {pdb["metadata"]["name"]: pdb for pdb in of_kind("PodDisruptionBudget")}
        assert pdbs["payment-service-api"]["spec"]["selector"]["matchLabels"] == labels
        (hpa,) = of_kind("HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment("api")["metadata"]["name"]
        assert hpa["spec"]["minReplicas"] >= 2

    def test_config_map_and_secret_name_only_settings_that_exist(self) -> None:
        (config_map,) = of_kind("ConfigMap")
        (secret,) = of_kind("Secret")
        names = [*config_map["data"], *secret["stringData"]]
        assert [n for n in names if not payments_setting_exists(n) and not n.startswith("OTEL_")] == []
        # Secrets stay out of the ConfigMap.
        assert not {"PAYMENTS_AUTH__SECRET", "PAYMENTS_GATEWAY__TRANSACTION_KEY"} & set(config_map["data"])
