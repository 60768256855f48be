"""The CRDs are generated from one source and teach every field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reef_operator.api import KINDS
from reef_operator.api.kinds import Kind
from reef_operator.render.files import CRD_DIRS, rendered_files, stale_files
from tests.conftest import REPO_ROOT


def test_generated_manifests_match_the_definitions() -> None:
    assert stale_files(REPO_ROOT) == [], "run: python -m reef_operator.render"


def test_crd_copies_in_crds_manifests_and_helm_are_identical() -> None:
    for kind in KINDS:
        texts = {(REPO_ROOT / d / f"{kind.crd_name}.yaml").read_text() for d in CRD_DIRS}
        assert len(texts) == 1, f"{kind.crd_name} differs between {CRD_DIRS}"


def test_stale_check_notices_a_hand_edit(tmp_path: Any) -> None:
    for relative, text in rendered_files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert stale_files(tmp_path) == []
    edited = tmp_path / "helm/reef-operator/crds/lieutenants.reef.vers.sh.yaml"
    edited.write_text(edited.read_text().replace("maxLength: 4096", "maxLength: 9999"))
    assert stale_files(tmp_path) == ["helm/reef-operator/crds/lieutenants.reef.vers.sh.yaml"]


def _fields(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _fields(child, f"{path}.{name}")
    if "items" in schema:
        yield from _fields(schema["items"], f"{path}[]")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_spec_and_status_field_has_a_description(kind: Kind) -> None:
    parts = (("spec", kind.spec), ("status", kind.status))
    for part, schema in ((p, s) for p, s in parts if s is not None):
        for path, field in _fields(schema, f"{kind.kind}.{part}"):
            assert field.get("description", "").strip(), f"{path} has no description"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_crd_names_categories_and_scope(kind: Kind) -> None:
    crd = kind.crd()
    names = crd["spec"]["names"]
    assert names["categories"] == ["reef"]
    assert len(names["shortNames"]) == 1
    version = crd["spec"]["versions"][0]
    # A record is written once, whole: it has no status to write apart.
    assert version.get("subresources") == (None if kind.kind == "TaskRecord"
                                           else {"status": {}})
    assert crd["spec"]["scope"] == ("Cluster" if kind.kind == "BootProfile" else "Namespaced")


def test_tasks_are_a_map_list_keyed_by_name() -> None:
    tasks = next(k for k in KINDS if k.kind == "Lieutenant").spec["properties"]["tasks"]
    assert tasks["x-kubernetes-list-type"] == "map"
    assert tasks["x-kubernetes-list-map-keys"] == ["name"]
    assert tasks["items"]["properties"]["mode"]["default"] == "prompt"
