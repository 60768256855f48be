-- Argo CD health check for reef.vers.sh Lieutenant, VMNode, BootProfile, ReefPolicy and VMPool.
--
-- The source of truth: `python -m reef_operator.render` copies this file into
-- argocd-cm-patch.yaml under resource.customizations.health.reef.vers.sh_<Kind>, and
-- `render --check` fails if the copy differs. Argo CD runs it with gopher-lua (Lua 5.1),
-- the object in the global `obj`; the script returns `hs` = {status, message}.
--
--   annotation reef.vers.sh/paused (reconciliation paused)             -> Suspended
--   no status yet, or status.observedGeneration ~= metadata.generation  -> Progressing
--   Stalled=True                                                        -> Degraded
--   Reconciling=True                                                    -> Progressing
--   Paused=True (Lieutenant, VMNode), unless paused for idleness        -> Suspended
--   Ready=True (an idle-paused lieutenant is Ready: the next task wakes it),
--   or Ready=False with reason Destroyed or Expired                     -> Healthy
--   anything else                                                       -> Progressing
-- (Argo CD itself reports an object with a deletionTimestamp as Progressing.)

local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function is_true(kind)
  local c = condition(kind)
  return c ~= nil and c.status == "True"
end

local function describe(c, fallback)
  local text = fallback
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    text = c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. text
  end
  return text
end

local annotations = obj.metadata.annotations
if annotations ~= nil and annotations["reef.vers.sh/paused"] ~= nil then
  hs.status = "Suspended"
  hs.message = "reconciliation paused by the reef.vers.sh/paused annotation"
  return hs
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report status"
  return hs
end

if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to act on generation " .. tostring(obj.metadata.generation)
    .. " (observed " .. tostring(obj.status.observedGeneration) .. ")"
  return hs
end

if is_true("Stalled") then
  hs.status = "Degraded"
  hs.message = describe(condition("Stalled"), "stalled")
  return hs
end

if is_true("Reconciling") then
  hs.status = "Progressing"
  hs.message = describe(condition("Reconciling"), "in progress")
  return hs
end

local paused = condition("Paused")
if is_true("Paused") and paused.reason ~= "Idle" then
  hs.status = "Suspended"
  hs.message = describe(condition("Paused"), "paused")
  return hs
end

local ready = condition("Ready")
if ready == nil and obj.kind == "BootProfile" and condition("Valid") ~= nil then
  -- A profile validated by an operator older than the Ready condition.
  ready = condition("Valid")
  if ready.status ~= "True" then
    hs.status = "Degraded"
    hs.message = describe(ready, "invalid")
    return hs
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to report readiness"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "ready")
  if is_true("Working") then
    hs.message = "working"
    if obj.status.currentTask ~= nil and obj.status.currentTask.name ~= nil then
      hs.message = "working on task " .. obj.status.currentTask.name
    end
  end
  local uptodate = condition("UpToDate")
  if uptodate ~= nil and uptodate.status == "False" then
    hs.message = hs.message .. "; " .. describe(uptodate, "booted with an older profile")
  end
  return hs
end

if ready.reason == "Destroyed" or ready.reason == "Expired" then
  hs.status = "Healthy"
  hs.message = describe(ready, "destroyed as asked; the object is kept")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "not ready")
return hs
