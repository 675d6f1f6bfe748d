-- wrk script: each request is a new call's call.end event (ids unique per thread and request).
-- Env: BENCH_KEY = a server key of the bench tenant; BENCH_RUN = a prefix for this run's ids.
local key = os.getenv("BENCH_KEY")
local run = os.getenv("BENCH_RUN") or ""
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
request = function()
  n = n + 1
  local id = string.format("%s%d-%d", run, tid, n)
  local body = string.format(
    '{"id": "end-%s", "type": "call.end", "call_id": "http-%s", "from": "+1415%07d", '
      .. '"to": "+14155550100", "status": "ANSWER", "duration": 60}',
    id, id, 2000000 + (tid * 1000003 + n) % 7999999)
  return wrk.format("POST", "/api/v1/telephony/events", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["X-Forwarded-Proto"] = "https",
  }, body)
end
