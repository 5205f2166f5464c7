-- wrk script: each request asks for / on one of SITES random hosts sN.bench.test.
local sites = tonumber(os.getenv("SITES") or "10000")
math.randomseed(os.time())
request = function()
  local i = math.random(0, sites - 1)
  return wrk.format("GET", "/", { ["Host"] = "s" .. i .. ".bench.test" })
end
