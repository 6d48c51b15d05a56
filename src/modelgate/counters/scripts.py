"""The Redis backend's Lua scripts: each public call is one script, so one round trip and atomic.

Every script starts with the same prelude: ARGV[1..4] are the key prefix, the
caller's ``now``, and the start of now's calendar month and of the next one
(Redis's Lua has no calendar, so Python computes them). Keys are derived from
the prefix inside the scripts (a release learns its scopes from the lease
record), so the backend needs one Redis node or a primary, not a Cluster.

Layout, for a scope S and a lease L under prefix P:

- ``P w:S``  hash: bucket → amount, and ``s`` → the running sum (read in O(1));
  its existence marks the scope as seen (``seed``)
- ``P o:S``  sorted set of the buckets (score = bucket), to prune and walk oldest first
- ``P c:S``  sorted set: lease → when its concurrency slot stops counting
- ``P i:S``  sorted set: member → bucket it was last seen in
- ``P l:L``  hash: ``x`` → when the lease expires, ``=S`` → ``c`` (a slot) or
  ``"kind seconds bucket amount"`` (a reservation)

Floats are written with ``%.17g``: Lua's own number-to-string keeps 14 digits,
which would leave residues when a reservation is taken back.
"""

from __future__ import annotations

from modelgate.counters.base import EPSILON, GC_MARGIN

_PRELUDE = f"""
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local MS = tonumber(ARGV[3])
local NMS = tonumber(ARGV[4])
local EPS = {EPSILON!r}
local MARGIN = {GC_MARGIN:d}
"""

_HELPERS = """
local function num(x) return string.format('%.17g', x) end

local function tidy(x)
  local r = math.floor(x * 1e9 + 0.5) / 1e9
  if r > 0 then return r end
  return 0
end

local function cutoff(kind, secs)
  if kind == 'r' then return math.floor(NOW) - secs end
  if kind == 'm' then return MS - 1 end
  return nil
end

local function here(kind)
  if kind == 'r' then return math.floor(NOW) end
  if kind == 'm' then return MS end
  return 0
end

local function keep(kind, secs, a, b)
  local ttl
  if kind == 'r' then ttl = secs + MARGIN
  elseif kind == 'm' then ttl = math.ceil(NMS - NOW) + MARGIN
  else return end
  redis.call('EXPIRE', a, ttl)
  if b then redis.call('EXPIRE', b, ttl) end
end

local function series(scope) return P .. 'w:' .. scope, P .. 'o:' .. scope end

local function load(h, o, cut)
  local sum = tonumber(redis.call('HGET', h, 's')) or 0
  if cut == nil then return sum end
  local pruned = false
  while true do
    local old = redis.call('ZRANGEBYSCORE', o, '-inf', num(cut), 'LIMIT', 0, 512)
    if #old == 0 then break end
    local vals = redis.call('HMGET', h, unpack(old))
    for i = 1, #old do sum = sum - (tonumber(vals[i]) or 0) end
    redis.call('HDEL', h, unpack(old))
    redis.call('ZREM', o, unpack(old))
    pruned = true
  end
  if pruned then
    if sum < EPS or redis.call('ZCARD', o) == 0 then sum = 0 end
    redis.call('HSET', h, 's', num(sum))
  end
  return sum
end

local function put(h, o, b, x, sum)
  local field = num(b)
  local old = tonumber(redis.call('HGET', h, field)) or 0
  if old == 0 and x <= 0 then return sum end
  local v = old + x
  if v < EPS then
    redis.call('HDEL', h, field)
    redis.call('ZREM', o, field)
    v = 0
  else
    redis.call('HSET', h, field, num(v))
    redis.call('ZADD', o, field, field)
  end
  sum = sum - old + v
  if sum < EPS then sum = 0 end
  return sum
end

local function free_at(kind, secs, h, o, sum, limit)
  if limit <= 0 then return nil end
  if kind == 'm' then return NMS end
  if kind ~= 'r' then return nil end
  local start = 0
  while true do
    local bs = redis.call('ZRANGE', o, start, start + 255)
    if #bs == 0 then return nil end
    local vals = redis.call('HMGET', h, unpack(bs))
    for i = 1, #bs do
      sum = sum - (tonumber(vals[i]) or 0)
      if tidy(sum) < limit then return tonumber(bs[i]) + secs end
    end
    start = start + 256
  end
end

local function charge(scope, kind, secs, amount)
  local h, o = series(scope)
  local sum = load(h, o, cutoff(kind, secs))
  sum = put(h, o, here(kind), amount, sum)
  redis.call('HSET', h, 's', num(sum))
  keep(kind, secs, h, o)
end
"""

# ARGV[5] lease, [6] lease ttl, [7] n, then per limit: scope, kind, seconds, limit, amount.
# Returns {'ok'}, {'refused', i, used, free_at or nil} or {'held', i}; checks everything before writing.
ACQUIRE = """
local lease = ARGV[5]
local lk = P .. 'l:' .. lease
local n = tonumber(ARGV[7])
local x = tonumber(redis.call('HGET', lk, 'x'))
if x and x <= NOW then
  redis.call('DEL', lk)
  x = nil
end
local sums, useds = {}, {}
for i = 1, n do
  local a = 8 + (i - 1) * 5
  local scope, kind, secs, limit = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if x and redis.call('HEXISTS', lk, '=' .. scope) == 1 then return {'held', i} end
  if kind == 'c' then
    local c = P .. 'c:' .. scope
    redis.call('ZREMRANGEBYSCORE', c, '-inf', num(NOW))
    local active = redis.call('ZCARD', c)
    if active >= limit then return {'refused', i, num(active), false} end
    useds[i] = active
  else
    local h, o = series(scope)
    local sum = load(h, o, cutoff(kind, secs))
    local used = tidy(sum)
    if used >= limit then
      local t = free_at(kind, secs, h, o, sum, limit)
      return {'refused', i, num(used), t and num(t) or false}
    end
    sums[i], useds[i] = sum, used
  end
end
if not x then
  x = NOW + tonumber(ARGV[6])
  redis.call('HSET', lk, 'x', num(x))
end
local life = math.ceil(x - NOW) + MARGIN
for i = 1, n do
  local a = 8 + (i - 1) * 5
  local scope, kind, secs = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  if kind == 'c' then
    local c = P .. 'c:' .. scope
    redis.call('ZADD', c, num(x), lease)
    if redis.call('TTL', c) < life then redis.call('EXPIRE', c, life) end
    redis.call('HSET', lk, '=' .. scope, 'c')
  else
    local limit, amount = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local h, o = series(scope)
    local r = tidy(math.min(amount, limit - useds[i]))
    local b = here(kind)
    local sum = put(h, o, b, r, sums[i])
    redis.call('HSET', h, 's', num(sum))
    keep(kind, secs, h, o)
    redis.call('HSET', lk, '=' .. scope, kind .. ' ' .. num(secs) .. ' ' .. num(b) .. ' ' .. num(r))
  end
end
redis.call('EXPIRE', lk, life)
return {'ok'}
"""

# ARGV[5] lease, [6] m, then per charge: scope, kind, seconds, amount. Returns 1 if the lease was settled.
RELEASE = """
local lease = ARGV[5]
local lk = P .. 'l:' .. lease
local rec = redis.call('HGETALL', lk)
if #rec == 0 then return 0 end
redis.call('DEL', lk)
local x, held = nil, {}
for i = 1, #rec, 2 do
  if rec[i] == 'x' then x = tonumber(rec[i + 1]) else held[string.sub(rec[i], 2)] = rec[i + 1] end
end
if not x or x <= NOW then return 0 end
local given, order = {}, {}
for i = 1, tonumber(ARGV[6]) do
  local a = 7 + (i - 1) * 4
  given[ARGV[a]] = {ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])}
  order[i] = ARGV[a]
end
for scope, v in pairs(held) do
  if v == 'c' then
    redis.call('ZREM', P .. 'c:' .. scope, lease)
  elseif given[scope] then
    local kind, secs, b, r = string.match(v, '^(%a) (%S+) (%S+) (%S+)$')
    secs, b, r = tonumber(secs), tonumber(b), tonumber(r)
    local h, o = series(scope)
    local cut = cutoff(kind, secs)
    local sum = load(h, o, cut)
    if cut == nil or b > cut then sum = put(h, o, b, -r, sum) end
    sum = put(h, o, here(kind), given[scope][3], sum)
    redis.call('HSET', h, 's', num(sum))
    keep(kind, secs, h, o)
    given[scope] = nil
  end
end
for _, scope in ipairs(order) do
  local g = given[scope]
  if g then charge(scope, g[1], g[2], g[3]) end
end
return 1
"""

# ARGV[5..8] scope, kind, seconds, amount.
CHARGE = """
charge(ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
"""

# ARGV[5..7] scope, kind, seconds. Returns {used, next_free_at or nil}.
STATE = """
local scope, kind, secs = ARGV[5], ARGV[6], tonumber(ARGV[7])
if kind == 'c' then
  return {num(redis.call('ZCOUNT', P .. 'c:' .. scope, '(' .. num(NOW), '+inf')), false}
end
local h, o = series(scope)
if redis.call('EXISTS', h) == 0 then return {'0', false} end
local used = tidy(load(h, o, cutoff(kind, secs)))
if used == 0 or kind == 't' then return {num(used), false} end
if kind == 'm' then return {num(used), num(NMS)} end
local oldest = redis.call('ZRANGE', o, 0, 0)
return {num(used), num(tonumber(oldest[1]) + secs)}
"""

# ARGV[5..7] scope, kind, seconds, [8] n, then n pairs: bucket, amount. Returns 1 if it seeded.
SEED = """
local scope, kind, secs, n = ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local h, o = series(scope)
if redis.call('EXISTS', h) == 1 then return 0 end
local cut = cutoff(kind, secs)
local sum = 0
for i = 1, n do
  local b, amount = tonumber(ARGV[7 + 2 * i]), tonumber(ARGV[8 + 2 * i])
  if cut == nil or b > cut then sum = put(h, o, b, amount, sum) end
end
redis.call('HSET', h, 's', num(sum))
keep(kind, secs, h, o)
return 1
"""

# ARGV[5..9] scope, member, kind, seconds, limit. Returns {admitted 0|1, distinct count}.
TOUCH_MEMBER = """
local scope, member, kind, secs, limit = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local k = P .. 'i:' .. scope
local cut = cutoff(kind, secs)
if cut then redis.call('ZREMRANGEBYSCORE', k, '-inf', num(cut)) end
local count = redis.call('ZCARD', k)
if not redis.call('ZSCORE', k, member) then
  if count >= limit then return {0, count} end
  count = count + 1
end
redis.call('ZADD', k, num(here(kind)), member)
keep(kind, secs, k)
return {1, count}
"""


def script(body: str) -> str:
    """A full script: the prelude and helpers, then ``body``."""
    return _PRELUDE + _HELPERS + body
