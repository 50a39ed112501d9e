"""The Lua scripts behind the SMSC guard's state in Redis (bot.fleet.limits). Each runs whole,
alone in Redis, on Redis's own clock: what one replica reads and what it writes back cannot be
interleaved with another's, and replicas whose clocks differ still agree on the windows."""

# Shared by the scripts: Redis's time in milliseconds, and a window's wait (seconds to go until
# fewer than `limit` of its entries are younger than `span`), after dropping the old ones.
_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function wait(key, limit, span)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  local excess = redis.call('ZCARD', key) - limit
  if excess < 0 then return 0 end
  local entry = redis.call('ZRANGE', key, excess, excess, 'WITHSCORES')
  return math.max(0, tonumber(entry[2]) + span - now)
end
"""

# The credentials' standing and, unless it serves the call, the turns and the admission: one
# round trip. KEYS: credentials, login turn, site turn, site pause, login pause, login window,
# site auth failures, site's careful flight, the marker, askers' failures... ARGV: known_good,
# ttl, fresh ms, ticket, lease ms, max per minute, window ms, per site, per asker, auth window
# ms, cap per site, careful ('1': unproven, see bot.smsc.state.PROOF_SPAN), first ('1': this
# process's first admission, see the marker below).
# -> state, balance JSON, age in ms (-1: none), then 'served' | 'busy' (another holds a turn,
# or careful and the flight holds as many as the cap leaves room for) |
# 'admitted' with the waits in ms: site paused, asker, auth, cap, login. Granted (all waits 0): the
# request is counted already, so a replica that dies before the answer still leaves it in the
# window, and the turns are the ticket's for the lease. Run again with the same ticket (redis-py
# retries a command whose answer was lost), it finds its own turns and entry, not another's.
# With no ticket, it only looks.
BEGIN = (
    _COMMON
    + """
local v = redis.call('HMGET', KEYS[1], 'state', 'balance', 'at')
if ARGV[1] == '1' and v[1] ~= 'rejected' and v[1] ~= 'refused' then
  redis.call('HSET', KEYS[1], 'state', 'verified')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  v[1] = 'verified'
end
local age = -1
if v[3] then age = now - tonumber(v[3]) end
local found = {v[1] or '', v[2] or '', age}
if ARGV[4] == '' or v[1] == 'rejected' or (v[2] and age < tonumber(ARGV[3])) then
  table.insert(found, 'served')
  return found
end
local new = v[1] ~= 'verified'
local turns = {KEYS[2]}
if new then turns[2] = KEYS[3] end
for _, turn in ipairs(turns) do
  local holder = redis.call('GET', turn)
  if holder and holder ~= ARGV[4] then
    table.insert(found, 'busy')
    return found
  end
end
redis.call('ZREM', KEYS[6], ARGV[4])
local site = math.max(0, redis.call('PTTL', KEYS[4]))
local login = redis.call('PTTL', KEYS[5])
login = math.max(login, wait(KEYS[6], tonumber(ARGV[6]), tonumber(ARGV[7])))
-- The marker (no expiry) holds the time until which every login counts as having spent its
-- window. Missing, Redis lost its data (restarted empty, flushed) and with it the windows'
-- requests: for one window, none is admitted. Unless it is this process's first admission:
-- on a new Redis there was nothing to lose, and the bot must not wait a minute at start.
local spent = redis.call('GET', KEYS[9])
if not spent then
  spent = now + tonumber(ARGV[7])
  if ARGV[13] == '1' then spent = 0 end
  redis.call('SET', KEYS[9], spent)
end
login = math.max(login, tonumber(spent) - now)
-- The cap holds for known good credentials too (the bot's IP may have changed).
local cap = wait(KEYS[7], tonumber(ARGV[11]), tonumber(ARGV[10]))
-- Unproven, requests in flight count against the cap too; a dead replica's go with their lease.
local careful = ARGV[12] == '1'
if careful then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
  redis.call('ZREM', KEYS[8], ARGV[4])
  local flying = redis.call('ZCARD', KEYS[8])
  if cap == 0 and redis.call('ZCARD', KEYS[7]) + flying >= tonumber(ARGV[11]) then
    for _, turn in ipairs(turns) do
      if redis.call('GET', turn) == ARGV[4] then redis.call('DEL', turn) end
    end
    table.insert(found, 'busy')
    return found
  end
end
local asker, auth = 0, 0
if new then
  auth = wait(KEYS[7], tonumber(ARGV[8]), tonumber(ARGV[10]))
  for i = 10, #KEYS do
    asker = math.max(asker, wait(KEYS[i], tonumber(ARGV[9]), tonumber(ARGV[10])))
  end
end
if site + asker + auth + cap + login == 0 then
  redis.call('ZADD', KEYS[6], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[6], ARGV[7])
  for _, turn in ipairs(turns) do redis.call('SET', turn, ARGV[4], 'PX', ARGV[5]) end
  if careful then
    redis.call('ZADD', KEYS[8], now + tonumber(ARGV[5]), ARGV[4])
    redis.call('PEXPIRE', KEYS[8], ARGV[5])
  end
else
  for _, turn in ipairs(turns) do
    if redis.call('GET', turn) == ARGV[4] then redis.call('DEL', turn) end
  end
end
for _, w in ipairs({'admitted', site, asker, auth, cap, login}) do table.insert(found, w) end
return found
"""
)

# The granted request is over, in one round trip. KEYS: login window, credentials, site's
# careful flight, turns... ARGV: ticket, window ms, balance JSON ('' when SMSC gave none), ttl.
# The request moves to the time of its answer and leaves the flight; the turns go back unless
# they ran out and another took them.
FINISH = (
    _COMMON
    + """
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'state', 'verified', 'balance', ARGV[3], 'at', now)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
"""
)

# KEYS: credentials, site auth failures, askers' failures... ARGV: ttl, auth window ms, ticket.
REJECTED = (
    _COMMON
    + """
redis.call('HDEL', KEYS[1], 'balance', 'at')
redis.call('HSET', KEYS[1], 'state', 'rejected')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
"""
)

# KEYS: credentials. Accepted credentials stay accepted; rejected ones may be sent again, but
# are not verified by a caller's known_good until SMSC accepts them ('refused').
RETRY = """
if redis.call('HGET', KEYS[1], 'state') == 'rejected' then
  redis.call('HSET', KEYS[1], 'state', 'refused')
end
"""
