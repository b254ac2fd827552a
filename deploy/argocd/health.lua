-- Argo CD health of grant-operator resources (the six kinds of grantoperator.dev).
-- Contract (docs/api.md, section 3): Argo CD reads the Ready condition.
--   Progressing: no status yet, status.observedGeneration behind metadata.generation,
--                no Ready condition, or Ready=Unknown
--   Suspended:   Ready reason Suspended (spec.suspend) or Expired (spec.expiresAt passed)
--   Healthy:     Ready=True
--   Degraded:    Ready=False (the message says why)
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for grant-operator to report a status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if observed == nil and ready ~= nil then
  observed = ready.observedGeneration
end
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for grant-operator to observe generation " .. tostring(generation)
  return hs
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
local message = ready.reason or ""
if ready.message ~= nil and ready.message ~= "" then
  message = message .. ": " .. ready.message
end
hs.message = message
if ready.reason == "Suspended" or ready.reason == "Expired" then
  hs.status = "Suspended"
elseif ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
return hs
