"""The KubeRay manifests, checked offline: every overlay builds with ``kubectl kustomize``, each
Ray resource validates against KubeRay's CRD schema with unknown fields refused, built-in kinds
validate with ``kubernetes-validate``, and the RayService embeds cluster/serve.yaml verbatim."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cluster.serve_config import SERVE_CONFIG

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "cluster" / "deploy" / "kubernetes"
OVERLAYS = ("dev", "staging", "prod")
KUBERAY_CRDS = ROOT.parent / "shared" / "data" / "kuberay"
KUBERNETES_VERSION = "1.32.0"


# libyaml's safe loader where PyYAML was built with it: the three KubeRay CRDs are 3.3 MB of
# YAML, 26 s for the pure-Python loader under coverage, about 1 s for libyaml's.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is missing: run cluster/ensure-system-packages.sh"
    built = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.load_all(built.stdout, Loader=SAFE_LOADER) if doc]


def closed(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever it lists properties but leaves
    the object open without ``x-kubernetes-preserve-unknown-fields``: an unknown (misspelt)
    field is then an error, as the API server's strict field validation makes it."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the closed openAPIV3Schema of each KubeRay CRD version."""
    schemas = {}
    for path in sorted(KUBERAY_CRDS.glob("ray.io_*.yaml")):
        crd = yaml.load(path.read_text(), Loader=SAFE_LOADER)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = closed(version["schema"]["openAPIV3Schema"])
            # metadata is the API server's ObjectMeta, not described by the CRD.
            schema["properties"]["metadata"] = {"type": "object"}
            schemas[(f"{group}/{version['name']}", kind)] = schema
    assert schemas, f"no KubeRay CRDs in {KUBERAY_CRDS}"
    return schemas


def validate_crd(doc: dict[str, Any], schemas: dict) -> None:
    schema = schemas[(doc["apiVersion"], doc["kind"])]
    jsonschema.Draft7Validator(schema).validate(doc)


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    return {overlay: kustomize(KUSTOMIZE / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    return crd_schemas()


def ray_resources(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["apiVersion"].startswith("ray.io/")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_one_rayservice_in_its_namespace(built: dict, overlay: str) -> None:
    docs = built[overlay]
    services = [d for d in docs if d["kind"] == "RayService"]
    assert len(services) == 1
    assert {d["metadata"]["namespace"] for d in docs} == {f"vigil-{overlay}"}
    cluster = services[0]["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["authOptions"] == {"mode": "token", "secretName": "vigil-ray-token"}
    assert cluster["gcsFaultToleranceOptions"]["redisAddress"] == "vigil-redis:6379"
    pods = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env["VIGIL_ENV"]["value"] == overlay
        assert env["VIGIL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "vigil-database"
        assert env["RAY_SERVE_ENABLE_HA_PROXY"]["value"] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rayservice_embeds_the_serve_config_file_verbatim(built: dict, overlay: str) -> None:
    (service,) = [d for d in built[overlay] if d["kind"] == "RayService"]
    assert service["spec"]["serveConfigV2"] == SERVE_CONFIG.read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_resources_match_kuberay_crds(built: dict, schemas: dict, overlay: str) -> None:
    resources = ray_resources(built[overlay])
    assert resources
    for doc in resources:
        validate_crd(doc, schemas)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_are_valid_kubernetes(built: dict, overlay: str) -> None:
    builtin = [d for d in built[overlay] if not d["apiVersion"].startswith("ray.io/")]
    assert {d["kind"] for d in builtin} >= {"ServiceAccount", "Service", "StatefulSet"}
    for doc in builtin:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_crd_check_refuses_a_misspelt_field(built: dict, schemas: dict) -> None:
    (service,) = [d for d in built["prod"] if d["kind"] == "RayService"]
    broken = copy.deepcopy(service)
    broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 3
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate_crd(broken, schemas)


def test_builtin_check_refuses_a_misspelt_field(built: dict) -> None:
    (redis,) = [d for d in built["prod"] if d["kind"] == "StatefulSet"]
    broken = copy.deepcopy(redis)
    broken["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_a_broken_overlay_fails_to_build(tmp_path: Path) -> None:
    copy_root = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy_root)
    overlay = copy_root / "overlays" / "prod" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("- pdb.yaml", "- missing.yaml"))
    with pytest.raises(AssertionError, match=r"missing\.yaml"):
        kustomize(overlay.parent)
