-- wrk script: each request asks about a random number of the loaded phonebook; 1 in 10 unknown.
-- Env: BENCH_MODE = lookup | decide | ceiling | ceiling-earlier, BENCH_KEY = server key, BENCH_CONTACTS = N.
local mode = os.getenv("BENCH_MODE")
local key = os.getenv("BENCH_KEY")
local contacts = tonumber(os.getenv("BENCH_CONTACTS"))

function setup(thread)
  thread:set("id", math.random(1, 1000000))
end

function init(args)
  math.randomseed(os.time() + id)
end

local function number()
  if math.random(10) == 1 then
    return string.format("+1628%07d", 2000000 + math.random(0, 7999999))
  end
  return string.format("+1415%07d", 2000000 + math.random(0, contacts - 1))
end

request = function()
  local headers = {["Authorization"] = "Bearer " .. key, ["X-Forwarded-Proto"] = "https"}
  if mode == "decide" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/v1/routing/decide", headers,
      string.format('{"caller": "%s"}', number()))
  end
  local paths = {ceiling = "/", ["ceiling-earlier"] = "/earlier"}
  local path = paths[mode] or "/api/v1/lookup"
  return wrk.format("GET", path .. "?number=" .. (number():gsub("%+", "%%2B")), headers)
end
