-- wrk script: GET /small.html (or EVENTS_PAGE) with a user agent and a client address (sent as
-- X-Forwarded-For, believed because the benchmark trusts 127.0.0.1) that vary per
-- request, like real traffic: 12 user agents (browsers, bots, tools) and 5,000
-- addresses, so the events pipeline cannot live off "same as the last request".
-- With EVENTS_DELAY_MS set, each connection waits that long after every answer: the
-- offered rate is then about connections / delay, the same in every mode.
-- With EVENTS_PIPELINE=N, each write carries N such requests (HTTP/1.1 pipelining):
-- wrk then spends a fraction of its per-request time, so the edge's core, not the
-- load generator's, sets the request rate.
local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
  "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
  "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
  "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
  "curl/8.5.0",
  "python-requests/2.32.3",
  "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
}
local referers = { "https://www.google.com/", "https://duckduckgo.com/", "https://news.example.org/item?id=1", "" }
local page = "/" .. (os.getenv("EVENTS_PAGE") or "small.html")
local n = 0
local function one()
  n = n + 1
  local i = (n * 7919) % 5000
  local headers = {
    ["Host"] = "bench.test",
    ["Accept-Encoding"] = "br",
    ["User-Agent"] = agents[(n % #agents) + 1],
    ["X-Forwarded-For"] = string.format("198.51.%d.%d", math.floor(i / 250), i % 250 + 1),
  }
  local r = referers[(n % #referers) + 1]
  if r ~= "" then headers["Referer"] = r end
  return wrk.format("GET", page, headers)
end

local depth = tonumber(os.getenv("EVENTS_PIPELINE") or "") or 1
request = function()
  if depth <= 1 then return one() end
  local reqs = {}
  for k = 1, depth do reqs[k] = one() end
  return table.concat(reqs)
end

local pause = tonumber(os.getenv("EVENTS_DELAY_MS") or "")
if pause then
  delay = function() return pause end
end
