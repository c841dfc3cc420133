"""The Lua scripts of the Redis broker and presence: each one runs atomically in Redis.

Positions are assigned here: ``PUBLISH`` increments the channel's offset, appends to the
history stream and publishes, in one script, so no other client can see an offset without its
publication or publications out of offset order.  The key layout and message format are in
``redis_codec``.  Times come from the Redis clock (``TIME``), so every node agrees on ages.
"""

from __future__ import annotations

# Shared helpers, prepended to the scripts that use them.
_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n)
  return string.format('%d', n)
end

-- The stream's epoch, creating the meta hash (with a fresh epoch and offset 0) when Redis
-- does not have it: a lost meta hash means a lost stream, so history is dropped with it.
-- A stream that was never published to keeps empty_ttl (a read does not make it live for
-- meta_ttl: reading many channel names costs little, briefly); 0: the same as meta_ttl.
local function ensure_meta(meta, hist, candidate, meta_ttl, empty_ttl)
  local epoch = redis.call('HGET', meta, 'e')
  local ttl = meta_ttl
  if not epoch then
    epoch = candidate
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'e', epoch, 's', 0, 'b', 0)
    if empty_ttl > 0 then
      ttl = empty_ttl
    end
  elseif empty_ttl > 0 and redis.call('HGET', meta, 's') == '0' then
    ttl = math.max(empty_ttl, redis.call('TTL', meta))
  end
  if ttl > 0 then
    redis.call('EXPIRE', meta, ttl)
  end
  return epoch
end

-- Drop the oldest history entries while the stream holds more than max_len entries or
-- max_bytes bytes, or its head was stored at or before cutoff (ms).  The bytes of the stream
-- (the sum of its messages' lengths) are kept in the meta hash ('b'); a stream Redis dropped
-- (expired) counts 0.  Each entry is dropped once, so the cost is amortised over the
-- publications that stored them; when nothing is over, this is three O(1) calls.
local function trim_head(meta, hist, max_len, max_bytes, cutoff)
  local len = redis.call('XLEN', hist)
  if len == 0 then
    redis.call('HSET', meta, 'b', 0)
    return
  end
  local bytes = tonumber(redis.call('HGET', meta, 'b') or '0')
  if len <= max_len and bytes <= max_bytes then
    local head = redis.call('XRANGE', hist, '-', '+', 'COUNT', 1)
    if tonumber(head[1][2][2]) > cutoff then
      return
    end
  end
  while len > 0 do
    local batch = redis.call('XRANGE', hist, '-', '+', 'COUNT', 128)
    local last = nil
    for i = 1, #batch do
      local fields = batch[i][2]
      if len <= max_len and bytes <= max_bytes and tonumber(fields[2]) > cutoff then
        break
      end
      bytes = bytes - #fields[4]
      len = len - 1
      last = i
    end
    if last == nil then
      break
    end
    local off = tonumber(string.match(batch[last][1], '^(%d+)'))
    redis.call('XTRIM', hist, 'MINID', int(off + 1) .. '-0')
    if last < #batch then
      break
    end
  end
  if len == 0 then
    bytes = 0
  end
  redis.call('HSET', meta, 'b', math.max(bytes, 0))
end

local function trim(meta, hist, size, ttl_ms, max_bytes, now)
  if size < 0 then
    return
  end
  if size == 0 or ttl_ms <= 0 or max_bytes <= 0 then
    redis.call('DEL', hist)
    redis.call('HSET', meta, 'b', 0)
    return
  end
  trim_head(meta, hist, size, max_bytes, now - ttl_ms)
end
"""

PUBLISH = _COMMON + """
-- KEYS: meta, hist
-- ARGV: body, history_size, history_ttl_ms, meta_ttl_s, topic, candidate epoch,
--       history_bytes
-- Returns {offset, epoch, time_ms}.
local meta, hist = KEYS[1], KEYS[2]
local size, ttl_ms, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[7])
local now = now_ms()
local epoch = ensure_meta(meta, hist, ARGV[6], tonumber(ARGV[4]), 0)
local offset = redis.call('HINCRBY', meta, 's', 1)
local message = int(offset) .. ':' .. epoch .. ':' .. int(now) .. ':' .. ARGV[1]
if size > 0 and ttl_ms > 0 and max_bytes > 0 then
  if redis.call('EXISTS', hist) == 0 then
    redis.call('HSET', meta, 'b', 0)  -- the stream expired with its TTL: nothing counted
  end
  redis.call('XADD', hist, int(offset) .. '-0', 't', int(now), 'p', message)
  redis.call('HINCRBY', meta, 'b', #message)
  trim_head(meta, hist, size, max_bytes, now - ttl_ms)
  redis.call('PEXPIRE', hist, ttl_ms)
else
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'b', 0)
end
redis.call('PUBLISH', ARGV[5], message)
return {offset, epoch, now}
"""

HISTORY = _COMMON + """
-- KEYS: meta, hist
-- ARGV: history_size (-1: do not trim), history_ttl_ms, meta_ttl_s, candidate epoch,
--       since_epoch ('' for none), since_offset, limit (-1: none), history_bytes,
--       empty_ttl_s (TTL of a meta hash this read creates; 0: meta_ttl_s)
-- Returns {epoch, top, messages, first} where first is the offset of the first retained
-- publication after since (0 if none; only with since).
local meta, hist = KEYS[1], KEYS[2]
local now = now_ms()
local epoch = ensure_meta(meta, hist, ARGV[4], tonumber(ARGV[3]), tonumber(ARGV[9] or '0'))
local top = tonumber(redis.call('HGET', meta, 's'))
trim(meta, hist, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[8]), now)
local limit = tonumber(ARGV[7])
local messages = {}
local entries
if ARGV[5] == '' then
  if limit == 0 then
    entries = {}
  elseif limit < 0 then
    entries = redis.call('XRANGE', hist, '-', '+')
  else
    local rev = redis.call('XREVRANGE', hist, '+', '-', 'COUNT', limit)
    entries = {}
    for i = #rev, 1, -1 do
      entries[#entries + 1] = rev[i]
    end
  end
  for i = 1, #entries do
    messages[i] = entries[i][2][4]
  end
  return {epoch, top, messages, 0}
end
local since = tonumber(ARGV[6])
if ARGV[5] ~= epoch or since > top then
  return {epoch, top, messages, 0}
end
local start = int(since + 1) .. '-0'
if limit < 0 then
  entries = redis.call('XRANGE', hist, start, '+')
else
  entries = redis.call('XRANGE', hist, start, '+', 'COUNT', math.max(limit, 1))
end
local first = 0
if #entries > 0 then
  first = tonumber(string.match(entries[1][1], '^(%d+)'))
end
if limit ~= 0 then
  for i = 1, #entries do
    messages[i] = entries[i][2][4]
  end
end
return {epoch, top, messages, first}
"""

PRESENCE_ADD = """
-- KEYS: presence hash, expiry zset; ARGV: client, info, ttl_ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 1
"""

PRESENCE_GET = """
-- KEYS: presence hash, expiry zset.  Drops expired entries, returns HGETALL of the rest.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 1, #expired, 500 do
  redis.call('HDEL', KEYS[1], unpack(expired, i, math.min(i + 499, #expired)))
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
end
return redis.call('HGETALL', KEYS[1])
"""
