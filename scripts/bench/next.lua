-- wrk script: POST /next/{user} for random users and tracks.
-- TRACKS (env) is the catalog size.
-- USERS (env) is the user pool: with a smaller pool, sessions accumulate
-- listens, as recommenders that read the whole session see in production.
local tracks = tonumber(os.getenv("TRACKS") or "16000")
local users = tonumber(os.getenv("USERS") or "1000000")
math.randomseed(os.time())
local headers = { ["Content-Type"] = "application/json" }
request = function()
  local user = math.random(0, users)
  local track = math.random(0, tracks - 1)
  local body = string.format('{"track": %d, "time": %.2f}', track, math.random())
  return wrk.format("POST", "/next/" .. user, headers, body)
end
