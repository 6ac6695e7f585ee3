-- The request mix of the load-test script of the system GAD replaces, per request:
-- 33.6 % GET /api/v1/tasks?limit=20, 25.2 % POST /api/v1/tasks, 25.2 % GET /api/v1/tasks/{id} of a
-- random task, 8.4 % GET /metrics, 7.5 % GET /api/v1/health. Set by loadtest/mix/run.sh:
-- MIX_TOKEN (bearer), MIX_IDS (file of task ids, one per line), MIX_BODY (the create body).
local token = os.getenv("MIX_TOKEN")
local body = os.getenv("MIX_BODY")
local ids = {}

function init(args)
  for line in io.lines(os.getenv("MIX_IDS")) do ids[#ids + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

local auth = { ["Authorization"] = "Bearer " .. token }
local json = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }

function request()
  local r = math.random(1, 999)
  if r <= 336 then
    return wrk.format("GET", "/api/v1/tasks?limit=20", auth)
  elseif r <= 588 then
    return wrk.format("POST", "/api/v1/tasks", json, body)
  elseif r <= 840 then
    return wrk.format("GET", "/api/v1/tasks/" .. ids[math.random(1, #ids)], auth)
  elseif r <= 924 then
    return wrk.format("GET", "/metrics", auth)
  else
    return wrk.format("GET", "/api/v1/health", auth)
  end
end
