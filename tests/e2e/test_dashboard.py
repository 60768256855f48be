"""`kubectl reef dashboard` in a real browser (Debian's chromium driven by playwright),
against the real control plane, a running operator and the real pi.

What is asserted is what a person sees on the page: the lieutenants table, a lieutenant's
live output while it works (without reloading), its history and task records (any one
opened in full), the VM tree and the search
over it, and the errors. Also that a model's answer containing HTML stays text, and that
the page cannot be read by another site (DNS rebinding) or used to change anything.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from reef_devkit.controlplane.processes import free_port
from reef_devkit.operator_process import OperatorProcess
from reef_operator.kube.conditions import Condition, merge_conditions, now_iso, summary
from reef_operator.lieutenants import phases
from reef_operator.lieutenants.holds import Hold
from tests.conftest import Kube
from tests.e2e.plugin import PLUGIN, create, failed, ok, reef, spawn_worker

pytestmark = pytest.mark.controlplane

INJECTED = '<img src=x id=injected onerror="document.title=\'pwned\'">'
SCRIPT = f"""
tasks:
  - match: "Scaffold the API"
    steps:
      - text: {json.dumps(f"Scaffolded the API. {INJECTED} Done.")}
  - match: "Stream slowly"
    steps:
      - text: "{' '.join(f'word{i}' for i in range(1, 25))}"
        chunks: 24
        delay: 0.4
"""
LIVE_TEXT = " ".join(f"word{i}" for i in range(1, 25))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by scripts/setup"
    with sync_playwright() as playwright:
        # Root in a container: chromium's own sandbox needs user namespaces it may lack.
        launched = playwright.chromium.launch(executable_path=chromium,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


class Dashboard:
    """`kubectl reef dashboard` as its own process, at the URL it announces."""

    def __init__(self, kubeconfig: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [PLUGIN, "--kubeconfig", str(kubeconfig), "dashboard", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"at (http://\S+/) ", line)
        assert found, f"no URL announced: {line!r} {self.process.stderr.read()}"  # type: ignore[union-attr]
        self.url = found.group(1)
        self.announcement = line

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


@contextlib.contextmanager
def open_dashboard(kubeconfig: Path, *args: str) -> Iterator[Dashboard]:
    dashboard = Dashboard(kubeconfig, *args)
    try:
        yield dashboard
    finally:
        dashboard.stop()


def test_a_lieutenants_work_shows_live_and_answers_stay_text(
    admin: Kube, scripted: str, operator: OperatorProcess, page: Page
) -> None:
    ns = scripted
    create(admin, ns)
    with open_dashboard(admin.kubeconfig, "-n", ns) as dashboard:
        assert f"dashboard for namespace {ns} at http://127.0.0.1:" in dashboard.announcement
        page.goto(dashboard.url)
        row = page.locator(f'tr[data-lieutenant="{ns}/api"]')
        expect(row).to_contain_text("Idle")
        expect(row).to_contain_text("scripted/scripted-1")
        expect(page.locator("#where")).to_contain_text(f"namespace {ns}")

        row.click()
        assert page.url.endswith(f"#lieutenant/{ns}/api")
        expect(page.locator("#detail-name")).to_contain_text("api")
        expect(page.locator("#detail-role")).to_have_text("Build the API")

        # Live: the answer appears word by word while the task runs, without a reload.
        ok(reef(admin, "-n", ns, "send", "api", "Stream slowly, please"))
        page.wait_for_function(
            """(full) => {
                 const live = document.querySelector('#live-output').textContent;
                 const task = document.querySelector('#detail-tasks [data-task="task-1"]');
                 return live.startsWith('word1 ') && live.length < full
                   && task && task.textContent.includes('Running')
                   && !document.querySelector('#history [data-task="task-1"]');
               }""", arg=len(LIVE_TEXT), timeout=60_000)
        answer = page.locator('#history [data-task="task-1"] pre')
        expect(answer).to_have_text(LIVE_TEXT, timeout=60_000)
        expect(page.locator('#detail-tasks [data-task="task-1"]')).to_contain_text("Succeeded")
        expect(row).to_contain_text("Idle")

        # A model's answer is shown as the text it is, never run as HTML.
        ok(reef(admin, "-n", ns, "send", "api", "Scaffold the API"))
        scaffolded = page.locator('#history [data-task="task-2"] pre')
        expect(scaffolded).to_have_text(f"Scaffolded the API. {INJECTED} Done.",
                                        timeout=60_000)
        assert page.locator("#injected").count() == 0
        expect(page.locator("#history h4").first).to_contain_text("=== Response 1 === task task-1")

        # The lieutenant's records, read when a task ends; any one opens in full, as text.
        records = page.locator("#records tbody tr")
        expect(records).to_have_count(2, timeout=60_000)
        expect(records.nth(0)).to_contain_text("task-1")
        expect(records.nth(1)).to_contain_text("Succeeded")
        page.locator('#records tr[data-record="task-2"]').click()
        expect(page.locator("#record-answer")).to_have_text(
            f"Scaffolded the API. {INJECTED} Done.")
        expect(page.locator("#record-title")).to_contain_text("task task-2: Succeeded")
        expect(page.locator("#record-message")).to_have_text("Scaffold the API")
        assert page.locator("#injected").count() == 0
        page.locator('#records tr[data-record="task-1"]').click()
        expect(page.locator("#record-answer")).to_have_text(LIVE_TEXT)
        missing = urllib.request.Request(f"{dashboard.url}api/lieutenants/{ns}/api/records/nope")
        with pytest.raises(urllib.error.HTTPError) as no_record:
            urllib.request.urlopen(missing, timeout=10)
        assert no_record.value.code == 404
        assert "lieutenant api has no task nope" in json.loads(no_record.value.read())["error"]

        # Polling does not redraw what did not change (a reader's scroll position and
        # selection in a long answer survive).
        page.evaluate("window.firstAnswer = document.querySelector('#history .response')")
        page.wait_for_timeout(2500)
        assert page.evaluate(
            "document.querySelector('#history .response') === window.firstAnswer")

        # Only this page's own name is answered (another site resolving its name to
        # 127.0.0.1 gets nothing), and nothing can be changed through it.
        port = dashboard.url.rsplit(":", 1)[1].rstrip("/")
        rebound = urllib.request.Request(f"{dashboard.url}api/fleet",
                                         headers={"Host": f"evil.example:{port}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=10)
        assert refused.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as read_only:
            urllib.request.urlopen(urllib.request.Request(
                f"{dashboard.url}api/fleet", data=b"{}", method="POST"), timeout=10)
        assert read_only.value.code == 405
        with urllib.request.urlopen(dashboard.url, timeout=10) as page_answer:
            assert "script-src 'self'" in page_answer.headers["Content-Security-Policy"]
        odd = urllib.request.Request(f"{dashboard.url}api/lieutenants/{ns}/%2e%2e")
        with pytest.raises(urllib.error.HTTPError) as not_a_name:
            urllib.request.urlopen(odd, timeout=10)
        assert not_a_name.value.code == 404

        # The lieutenant deleted while shown: the page says so and shows nothing stale.
        admin.custom.delete_namespaced_custom_object("reef.vers.sh", "v1alpha1", ns,
                                                     "lieutenants", "api")
        expect(page.locator("#problem")).to_contain_text(
            f"lieutenant 'api' not found in namespace {ns}", timeout=60_000)
        expect(page.locator("#detail")).to_be_hidden()
        expect(row).to_have_count(0)


def test_the_vm_tree_and_finding_vms_by_their_dna(
    admin: Kube, scripted: str, operator: OperatorProcess, page: Page
) -> None:
    ns = scripted
    create(admin, ns)
    parent = spawn_worker(admin, ns, "api")
    worker_vm = admin.get("vmnodes", "worker", ns)["status"]["vmId"]

    # The same search on the command line: the matches with their ancestors.
    found = ok(reef(admin, "-n", ns, "tree", "--capability", "npm")).splitlines()
    assert [line.split(" [")[0] for line in found] == [parent, "└── worker"]
    assert ok(reef(admin, "-n", ns, "tree", "--category", "lieutenant")).splitlines()[0] \
        .startswith(f"{parent} [Lieutenant]")
    assert len(ok(reef(admin, "-n", ns, "tree", "--category", "lieutenant")).splitlines()) == 1
    assert ok(reef(admin, "-n", ns, "tree", "--module", "nope")) == "No VMNodes match.\n"

    with open_dashboard(admin.kubeconfig, "-n", ns) as dashboard:
        page.goto(dashboard.url)
        top = page.locator(f'#tree > li[data-vmnode="{ns}/{parent}"]')
        worker = top.locator(f'ul > li[data-vmnode="{ns}/worker"]')   # drawn below its parent
        expect(worker).to_contain_text("Swarm")
        expect(worker).to_contain_text(worker_vm)
        expect(worker.locator(".gene.capability")).to_have_text(["npm"])
        expect(worker.locator(".gene.module")).to_have_text(["store", "test-runner"])
        expect(page.locator("#find-count")).to_have_text("2 VMs")

        page.fill("#find", "npm")
        expect(page.locator("#find-count")).to_have_text("1 of 2 VMs match")
        expect(worker).to_have_class("match")
        expect(top).to_have_class("context")          # shown, faded, as the lineage
        page.fill("#find", "swarm test-runner")
        expect(page.locator("#find-count")).to_have_text("1 of 2 VMs match")
        page.fill("#find", "no-such-capability")
        expect(page.locator("#find-count")).to_have_text("0 of 2 VMs match")
        expect(page.locator("#tree > li")).to_have_count(0)
        page.fill("#find", "")

        # The tree links a lieutenant's VM to the lieutenant.
        top.locator("a", has_text="lieutenant api").click()
        expect(page.locator("#detail-name")).to_contain_text("api")

    # Every namespace: lieutenants named with their namespace.
    with open_dashboard(admin.kubeconfig, "-A") as everywhere:
        assert "dashboard for every namespace" in everywhere.announcement
        page.goto(everywhere.url)
        expect(page.locator("#where")).to_contain_text("all namespaces")
        expect(page.locator(f'tr[data-lieutenant="{ns}/api"] td').first).to_have_text(
            f"{ns}/api")

    with open_dashboard(admin.kubeconfig, "-n", ns) as dashboard:
        page.goto(dashboard.url)
        # Deleted behind the page's back: it says so instead of showing stale data.
        expect(page.locator(f'li[data-vmnode="{ns}/worker"]')).to_have_count(1)
        admin.custom.delete_namespaced_custom_object(
            "reef.vers.sh", "v1alpha1", ns, "vmnodes", "worker")
        expect(page.locator(f'li[data-vmnode="{ns}/worker"]')).to_have_count(0,
                                                                             timeout=60_000)


HELD = {
    "sleepy": (Hold("Paused", "IdlePaused", "paused after 15m idle; the next task resumes it"),
               "Paused"),
    "spender": (Hold("Paused", "BudgetExhausted", "budget spent: 41,200 of 40,000 tokens"),
                "Paused"),
    "gone": (Hold("Destroyed", "Expired", "destroyed after 7d without tasks"), "Destroyed"),
}


def _lieutenant_with_status(admin: Kube, namespace: str, name: str, phase: str,
                            conditions: list[Condition]) -> None:
    admin.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "reef.vers.sh/v1alpha1", "kind": "Lieutenant",
        # The management pause: an operator left running by another test of this module
        # writes nothing to it, so the status stays as written here.
        "metadata": {"name": name, "annotations": {"reef.vers.sh/paused": "true"}},
        "spec": {"role": "Build the API"}}))
    admin.custom.patch_namespaced_custom_object_status(
        "reef.vers.sh", "v1alpha1", namespace, "lieutenants", name, {"status": {
            "observedGeneration": 1, "phase": phase,
            "conditions": merge_conditions(None, conditions, 1, now_iso())}})


def test_lieutenants_a_policy_holds_show_why_and_an_idle_pause_looks_healthy(
    admin: Kube, namespace: str, page: Page
) -> None:
    """Statuses written as the operator writes them; the behaviour behind them has its own
    tests."""
    for name, (hold, _) in HELD.items():
        _lieutenant_with_status(admin, namespace, name, *(
            phases.held(hold) if hold.state == "Paused" else
            phases.destroyed(True, name, hold)))
    _lieutenant_with_status(admin, namespace, "crowded", "Starting", [
        *summary("Lieutenant", "QuotaExceeded", "no room for another running VM",
                 reconciling=True),
        Condition("Lieutenant", "Working", False, "QuotaExceeded")])
    _lieutenant_with_status(admin, namespace, "awake", "Idle",
                            summary("Lieutenant", "SessionReady", "takes tasks", ready=True))
    _lieutenant_with_status(admin, namespace, "napping", *phases.paused())
    _lieutenant_with_status(admin, namespace, "broken", "Error", summary(
        "Lieutenant", "MissingInput", "Secret creds not found", stalled=True))

    with open_dashboard(admin.kubeconfig, "-n", namespace) as dashboard:
        page.goto(dashboard.url)

        def row(name: str) -> Any:
            return page.locator(f'tr[data-lieutenant="{namespace}/{name}"]')

        for name, (hold, shown_phase) in HELD.items():
            expect(row(name).locator(".phase")).to_have_text(shown_phase)
            expect(row(name).locator("td.reason")).to_contain_text(hold.reason)
            expect(row(name).locator(".held-message")).to_have_text(hold.message)
        expect(row("crowded").locator("td.reason")).to_contain_text("QuotaExceeded")
        expect(row("crowded").locator(".held-message")).to_have_text(
            "no room for another running VM")
        # A lieutenant nothing holds shows its reason, without a message line.
        expect(row("awake").locator("td.reason")).to_have_text("SessionReady")
        expect(row("napping").locator("td.reason")).to_have_text("Paused")
        assert row("awake").locator(".held-message").count() == 0

        def colour(name: str) -> str:
            return str(row(name).locator(".phase").evaluate(
                "(badge) => getComputedStyle(badge).backgroundColor"))

        colours = {name: colour(name) for name in (
            "sleepy", "spender", "gone", "crowded", "awake", "napping", "broken")}
        # Asleep looks like a healthy idle lieutenant, not like one the user paused.
        assert colours["sleepy"] == colours["awake"] != colours["napping"]
        # A spent budget and an expiry are each their own, and neither looks broken.
        assert len({colours[n] for n in ("sleepy", "spender", "gone", "crowded",
                                         "broken")}) == 5
        assert colours["gone"] != colours["broken"]

        row("sleepy").click()
        expect(page.locator("#detail-state")).to_contain_text(
            f"IdlePaused: {HELD['sleepy'][0].message}")


def test_errors_are_shown_on_the_page_and_exit_codes(
    admin: Kube, namespace: str, page: Page, tmp_path: Path
) -> None:
    config: dict[str, Any] = yaml.safe_load(admin.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    with open_dashboard(dead) as dashboard:
        page.goto(dashboard.url)
        expect(page.locator("#problem")).to_contain_text(
            "cannot reach the cluster at https://127.0.0.1:")

    with open_dashboard(admin.kubeconfig, "-n", namespace) as dashboard:
        page.goto(f"{dashboard.url}#lieutenant/{namespace}/ghost")
        expect(page.locator("#problem")).to_have_text(
            f"lieutenant 'ghost' not found in namespace {namespace}; there are none "
            f"in namespace {namespace}")
        expect(page.locator("#no-lieutenants")).to_be_visible()
        port = dashboard.url.rsplit(":", 1)[1].rstrip("/")
        # The port is taken: a clear error and exit code 1.
        assert f"cannot listen on 127.0.0.1:{port}" in failed(
            reef(admin, "-n", namespace, "dashboard", "--port", port))

        dashboard.stop()
        expect(page.locator("#problem")).to_have_text(
            "the dashboard stopped (kubectl reef dashboard is not running)")

