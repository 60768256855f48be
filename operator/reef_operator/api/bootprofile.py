"""The BootProfile kind (cluster-scoped): how a VM is made and booted."""

from __future__ import annotations

from reef_operator.api import common
from reef_operator.api.conditions import BOOTPROFILE as BOOTPROFILE_CONDITIONS
from reef_operator.api.kinds import Column, Kind
from reef_operator.api.schema import (
    DNS_LABEL,
    ENV_NAME,
    array,
    boolean,
    conditions,
    integer,
    obj,
    string,
)

PROVIDERS = ("Vers", "Local")
PI_VERSION = "0.73.1"

SPEC = obj(
    "How VMs of this profile are made and booted.",
    {
        "provider": string(
            "Where the VMs run: Vers microVMs, or Local (a directory and processes on the "
            "operator's host, for development and demos).",
            enum=PROVIDERS, default="Vers",
        ),
        "category": string("Default category of VMs booted from this profile.",
                           enum=common.VM_CATEGORIES, default="Agent"),
        "source": common.source("profile's VMs"),
        "resources": common.resources("profile's VMs"),
        "modules": common.modules("profile's VMs"),
        "capabilities": common.capabilities("profile's VMs"),
        "env": array(
            "Environment written to the VM's identity env file at boot.",
            obj(
                "One environment variable: a literal value or a key of a Secret.",
                {
                    "name": string("Variable name.", pattern=ENV_NAME, max_length=128),
                    "value": string("Literal value.", max_length=4096),
                    "valueFrom": obj(
                        "Where the value comes from instead of value.",
                        {
                            "secretKeyRef": obj(
                                "A key of a Secret.",
                                {
                                    "namespace": string(
                                        "Namespace of the Secret: only the operator's own "
                                        "namespace (REEF_NAMESPACE, default reef-system) is "
                                        "accepted.",
                                                        pattern=DNS_LABEL, max_length=63),
                                    "name": string("Name of the Secret.", max_length=253,
                                                   pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
                                    "key": string("Key in the Secret.", max_length=253,
                                                  pattern=r"^[-._a-zA-Z0-9]+$"),
                                },
                                required=("namespace", "name", "key"),
                            ),
                        },
                        required=("secretKeyRef",),
                    ),
                },
                required=("name",),
                max_properties=2,
            ),
            max_items=128,
            x_kubernetes_list_type="map",
            x_kubernetes_list_map_keys=["name"],
        ),
        "agent": obj(
            "The pi coding agent on the VM.",
            {
                "piVersion": string("npm version of @mariozechner/pi-coding-agent.",
                                    pattern=r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$",
                                    default=PI_VERSION),
                "install": boolean("Install pi at boot (off when the golden image has it).",
                                   default=True),
            },
        ),
        "bootScript": string("Extra shell script run after the generated boot steps.",
                             max_length=65536),
        "bootTimeoutSeconds": integer("How long the boot script may run.", minimum=10,
                                      maximum=7200, default=600),
    },
)

STATUS = obj(
    "Observed state of the profile.",
    {
        "observedGeneration": integer("The .metadata.generation last validated.", minimum=0,
                                      format="int64"),
        "hash": string("Hash of the rendered boot script; VM nodes booted with another hash "
                       "show UpToDate=False.", max_length=128),
        "conditions": conditions("Current conditions.", BOOTPROFILE_CONDITIONS.type_names),
    },
)

BOOTPROFILE = Kind(
    kind="BootProfile",
    plural="bootprofiles",
    short_names=("bp",),
    namespaced=False,
    description=(
        "A recipe for VMs (cluster-scoped): provider, golden image, size, DNA (modules and "
        "capabilities), environment, agent version and boot script."
    ),
    spec=SPEC,
    status=STATUS,
    spec_required=False,
    columns=(
        Column("Provider", "string", ".spec.provider", "Where the VMs run"),
        Column("Category", "string", ".spec.category", "Default VM category"),
        Column("Valid", "string", '.status.conditions[?(@.type=="Valid")].status', "Valid"),
        Column("Hash", "string", ".status.hash", "Boot script hash", priority=1),
        Column("Age", "date", ".metadata.creationTimestamp", "Age"),
    ),
)
