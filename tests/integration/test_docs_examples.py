"""The YAML examples of the docs are objects the apiserver accepts: each block is applied
with a server-side dry run (schema, defaults and admission, nothing stored)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO_ROOT, Kube

pytestmark = pytest.mark.controlplane

# Pages whose ```yaml blocks are whole reef objects.
PAGES = ("docs/policies.md",)
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: str) -> list[str]:
    return BLOCK.findall((REPO_ROOT / page).read_text())


@pytest.mark.parametrize("page", PAGES)
def test_every_yaml_example_is_accepted_by_the_apiserver(admin: Kube, namespace: str,
                                                         page: str) -> None:
    blocks = _blocks(page)
    assert len(blocks) >= 3, f"{page}: its examples were not found"
    for block in blocks:
        document = yaml.safe_load(block)
        document["metadata"].pop("namespace", None)     # the test's namespace instead
        result = admin.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-",
                               stdin=yaml.safe_dump(document), check=False)
        assert result.returncode == 0, f"{page}: {document['kind']} " \
                                       f"{document['metadata']['name']}: {result.stderr}"
        assert "(server dry run)" in result.stdout, result.stdout
