"""Admission against the namespace's ReefPolicy: what can be decided when an object is written.

- A second ReefPolicy in a namespace is refused.
- A Lieutenant create over limits.maxLieutenants is refused.
- A Lieutenant or VMNode whose BootProfile (spec.profileRef, else its VMPool's, else the
  operator's default profile) is not in limits.allowedProfiles, or whose VM would be larger than
  limits.maxVCPUPerVM / maxMemoryMiBPerVM, is refused.
- A Lieutenant whose model provider (spec.model.provider, or the operator's default) is
  not in limits.allowedModelProviders is refused.

Each is checked on CREATE and, on UPDATE, only when the fields it reads change, so an
object admitted under an older policy can still be edited (its finalizers, its tasks).
Everything is read from memory (the policies, the lieutenants and the BootProfiles as the
watches last saw them), so admission never waits on the apiserver; like the other checks
it fails open, and the controllers ask the same questions (api/reefpolicy.py) before a
VM is created or resumed: a node then waits (running VMs) or stalls (profile, size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import kopf

from reef_operator.api import reefpolicy
from reef_operator.constants import GROUP, VERSION
from reef_operator.controllers import runtime
from reef_operator.pools.members import pool_profile

Resources = Callable[[str], Mapping[str, Any] | None]   # a BootProfile's resources, by name


def _spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body.get("spec") or {}


def _profile(body: Mapping[str, Any], default: str) -> str:
    return str((_spec(body).get("profileRef") or {}).get("name") or default)


def _provider(body: Mapping[str, Any], default: str) -> str:
    return str((_spec(body).get("model") or {}).get("provider") or default)


def _profile_problems(old: Mapping[str, Any], new: Mapping[str, Any],
                      policy: Mapping[str, Any] | None, default_profile: str,
                      resources_of: Resources) -> list[str]:
    profile = _profile(new, default_profile)
    own = _spec(new).get("resources")
    if old and profile == _profile(old, default_profile) and own == _spec(old).get("resources"):
        return []
    return reefpolicy.profile_problems(policy, profile, own or resources_of(profile))


def lieutenant_problems(old: Mapping[str, Any], new: Mapping[str, Any],
                        policy: Mapping[str, Any] | None, existing: int, *,
                        default_profile: str, default_provider: str,
                        resources_of: Resources) -> list[str]:
    """What the policy refuses of a Lieutenant write (pure; `old` is {} on CREATE and
    `existing` counts the namespace's lieutenants without this one)."""
    if policy is None:
        return []
    problems = [] if old else [reefpolicy.lieutenants_problem(policy, existing)]
    problems += _profile_problems(old, new, policy, default_profile, resources_of)
    provider = _provider(new, default_provider)
    if not old or provider != _provider(old, default_provider):
        problems.append(reefpolicy.model_provider_problem(policy, provider))
    return [problem for problem in problems if problem]


def vmnode_problems(old: Mapping[str, Any], new: Mapping[str, Any],
                    policy: Mapping[str, Any] | None, *, default_profile: str,
                    resources_of: Resources) -> list[str]:
    """What the policy refuses of a VMNode write (pure)."""
    if policy is None:
        return []
    return _profile_problems(old, new, policy, default_profile, resources_of)


def _namespace(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("namespace") or "")


def _default_profile(rt: runtime.Runtime, body: Mapping[str, Any]) -> str:
    """The profile an object without spec.profileRef boots: its VMPool's, if it names one
    the operator knows, else the operator's default."""
    pool = (_spec(body).get("poolRef") or {}).get("name")
    return (pool_profile(rt.pool(_namespace(body), pool)) if pool else None) or \
        rt.config.default_profile


def _resources_of(rt: runtime.Runtime) -> Resources:
    def resources(name: str) -> Mapping[str, Any] | None:
        profile = rt.profiles.get(name)
        return profile.resources if profile is not None else None
    return resources


def _refuse(problems: list[str]) -> None:
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


def lieutenant_fits_the_policy(body: kopf.Body, **kwargs: Any) -> None:
    rt = runtime.current()
    old, new = kwargs.get("old") or {}, kwargs.get("new") or body
    namespace = _namespace(new)
    _refuse(lieutenant_problems(
        old, new, rt.policy(namespace), rt.lieutenants_in(namespace),
        default_profile=_default_profile(rt, new),
        default_provider=rt.config.default_model_provider, resources_of=_resources_of(rt)))


def vmnode_fits_the_policy(body: kopf.Body, **kwargs: Any) -> None:
    rt = runtime.current()
    old, new = kwargs.get("old") or {}, kwargs.get("new") or body
    _refuse(vmnode_problems(old, new, rt.policy(_namespace(new)),
                            default_profile=_default_profile(rt, new),
                            resources_of=_resources_of(rt)))


def reefpolicy_is_the_only_one(body: kopf.Body, **kwargs: Any) -> None:
    new = kwargs.get("new") or body
    name = (new.get("metadata") or {}).get("name")
    known = runtime.current().policies.get(_namespace(new)) or {}
    _refuse([problem for problem in
             [reefpolicy.duplicate_problem(sorted(n for n in known if n != name))] if problem])


def register() -> None:
    """Register the checks with kopf (ids are lowercase DNS labels: see admission.py)."""
    kopf.on.validate(GROUP, VERSION, "lieutenants", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="lieutenant-fits-the-policy")(
        lieutenant_fits_the_policy)
    kopf.on.validate(GROUP, VERSION, "vmnodes", operations=["CREATE", "UPDATE"],
                     ignore_failures=True, id="vmnode-fits-the-policy")(vmnode_fits_the_policy)
    kopf.on.validate(GROUP, VERSION, "reefpolicies", operations=["CREATE"],
                     ignore_failures=True, id="reefpolicy-is-the-only-one")(
        reefpolicy_is_the_only_one)
