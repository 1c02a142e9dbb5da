"""The Lua scripts of the Redis store: each one atomic, and on a cluster inside one hash slot.

Every key a script touches is passed in ``KEYS`` and carries the same hash tag (see
``_redis_layout``), so the scripts run unchanged on Redis Cluster. The exceptions are the
``…_BY_KEY`` scripts, flagged ``no-cluster``: they follow a key bucket entry to the user's
records on the server, a key in another slot that they spell themselves, which saves a round
trip on a standalone Redis and is refused by a cluster (the store does not call them there).

A user's records are one string (``_redis_layout``); a script decodes it into a list of
fields, edits fields and writes it back whole. Times are 8-byte doubles the caller packed
(``struct.unpack`` reads them exactly); a script copies them but never writes a time it
computed, except the purge index's score (``%.17g``: a double round-trips).
"""

from __future__ import annotations

# Shared prologue: a user's records string (``_redis_layout``: length-prefixed fields, the
# user id first, then NF fields per record) as a Lua list and back, and when a record dies.
_RECORDS = """
local NF = 19
local function decode(s)
  local t, i, n = {}, 1, #s
  while i <= n do
    local l = string.byte(s, i)
    i = i + 1
    if l == 255 then
      local a, b, c, d = string.byte(s, i, i + 3)
      l = ((a * 256 + b) * 256 + c) * 256 + d
      i = i + 4
    end
    t[#t + 1] = string.sub(s, i, i + l - 1)
    i = i + l
  end
  return t
end
local function encode(t)
  local out = {}
  for k = 1, #t do
    local l = #t[k]
    if l < 255 then
      out[#out + 1] = string.char(l)
    else
      out[#out + 1] = string.char(255, math.floor(l / 16777216) % 256,
                                  math.floor(l / 65536) % 256, math.floor(l / 256) % 256, l % 256)
    end
    out[#out + 1] = t[k]
  end
  return table.concat(out)
end
local function dbl(s) return (struct.unpack('<d', s)) end
local function load(name)
  local s = redis.call('GET', name)
  if not s then return nil end
  return decode(s)
end
-- Where the record with field ``f`` (1: handle, 2: key) equal to ``v`` starts, or nil.
local function find(t, f, v)
  for at = 2, #t, NF do
    if t[at + f - 1] == v then return at end
  end
  return nil
end
-- The records string ``name`` decoded, and where its record with field ``f`` equal to ``v``
-- starts (nil when there is no such record, or no records string).
local function load_at(name, f, v)
  local t = load(name)
  return t, t and find(t, f, v)
end
local function fields(t, at)
  local r = {t[1]}
  for k = 0, NF - 1 do r[#r + 1] = t[at + k] end
  return r
end
local function remove(t, at)
  for _ = 1, NF do table.remove(t, at) end
end
local function save(name, t)
  if #t <= 1 then redis.call('DEL', name) else redis.call('SET', name, encode(t)) end
end
-- ``locate`` walks a records string without copying it: the user id and the field
-- positions and lengths of the record whose field ``f`` equals ``v``, or nil (the read
-- paths and touch, which run on every cold lookup, use it instead of ``decode``).
local function header(s, i)
  local l = string.byte(s, i)
  if l == 255 then
    local a, b, c, d = string.byte(s, i + 1, i + 4)
    return i + 5, ((a * 256 + b) * 256 + c) * 256 + d
  end
  return i + 1, l
end
local function locate(s, f, v)
  local up, ul = header(s, 1)
  local i, n, want = up + ul, #s, #v
  local pos, len = {}, {}
  while i <= n do
    for k = 1, NF do
      local p, l = header(s, i)
      pos[k], len[k], i = p, l, p + l
    end
    if len[f] == want and string.sub(s, pos[f], pos[f] + want - 1) == v then
      return string.sub(s, up, up + ul - 1), pos, len
    end
  end
  return nil
end
local function extract(s, user, pos, len)
  local r = {user}
  for k = 1, NF do r[k + 1] = string.sub(s, pos[k], pos[k] + len[k] - 1) end
  return r
end
local function dies_at(t, at)
  local expires, idle = dbl(t[at + 5]), dbl(t[at + 6])
  local last_seen = dbl(t[at + 4])
  if idle > 0 and last_seen + idle < expires then return last_seen + idle end
  return expires
end
"""

# KEYS: records. ARGV: user id, the record's NF fields. 0 when the user has the handle.
CREATE_SESSION = (
    _RECORDS
    + """
local t = load(KEYS[1]) or {ARGV[1]}
if find(t, 1, ARGV[2]) then return 0 end
local n = 0
for at = 2, #t, NF do n = math.max(n, tonumber(t[at + 16])) end
for k = 2, #ARGV do t[#t + 1] = ARGV[k] end
t[#t - 2] = tostring(n + 1)
redis.call('SET', KEYS[1], encode(t))
return 1
"""
)

# KEYS: records. ARGV: 1 (handle) or 2 (key), its value. {user id, fields} or false.
GET_SESSION = (
    "#!lua flags=no-writes\n"
    + _RECORDS
    + """
local s = redis.call('GET', KEYS[1])
if not s then return false end
local user, pos, len = locate(s, tonumber(ARGV[1]), ARGV[2])
if not user then return false end
return extract(s, user, pos, len)
"""
)

# Shared prologue of the ``…_BY_KEY`` scripts (standalone Redis only): the records a key
# bucket entry names, spelled on the server from ``head``, the entry and ``tail``.
_FOLLOW = """
local function follow(bucket, key, head, tail)
  local tag = redis.call('HGET', bucket, key)
  if not tag then return nil end
  return head .. tag .. tail
end
"""

# KEYS: key bucket. ARGV: key, head, tail, consumed-key name or ''. Standalone Redis only.
# The record whose current key is ``key`` ({user id, fields}), or with a consumed-key name,
# also the family that consumed ``key``; false when there is none. The bucket is a hint:
# the record decides.
GET_BY_KEY = (
    "#!lua flags=no-writes,no-cluster\n"
    + _RECORDS
    + _FOLLOW
    + """
local function read(name, f, v)
  local s = redis.call('GET', name)
  if not s then return nil end
  local user, pos, len = locate(s, f, v)
  if not user then return nil end
  return extract(s, user, pos, len)
end
local name = follow(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local found = name and read(name, 2, ARGV[1])
if found then return found end
if ARGV[4] == '' then return false end
local ref = redis.call('GET', ARGV[4])
if not ref then return false end
local sep = string.find(ref, '\\0', 1, true)
return read(ARGV[2] .. string.sub(ref, 1, sep - 1) .. ARGV[3], 1, string.sub(ref, sep + 1))
  or false
"""
)

# Shared prologue: slide a record's idle expiry to ``last_seen``; never move it back.
# Returns 1 when the user has a record with ``key`` (touched or already newer), 0 if not.
_TOUCH = """
local function touch(name, key, last_seen)
  local s = redis.call('GET', name)
  local user, pos = nil, nil
  if s then user, pos = locate(s, 2, key) end
  if not user then return 0 end  -- no such session (any more): the caller drops its copy
  local at = pos[5]  -- last_seen_at: 8 bytes, replaced in place
  if dbl(last_seen) <= dbl(string.sub(s, at, at + 7)) then return 1 end
  redis.call('SET', name, string.sub(s, 1, at - 1) .. last_seen .. string.sub(s, at + 8))
  return 1
end
"""

# KEYS: records. ARGV: key, last_seen_at.
TOUCH_SESSION = (
    _RECORDS
    + _TOUCH
    + """
return touch(KEYS[1], ARGV[1], ARGV[2])
"""
)

# KEYS: key bucket. ARGV: key, last_seen_at, head, tail. Standalone Redis only.
TOUCH_BY_KEY = (
    "#!lua flags=no-cluster\n"
    + _RECORDS
    + _FOLLOW
    + _TOUCH
    + """
local name = follow(KEYS[1], ARGV[1], ARGV[3], ARGV[4])
if not name then return 0 end
return touch(name, ARGV[1], ARGV[2])
"""
)

# KEYS: records. ARGV: old key, new key, '1' to set roles, roles JSON.
REPLACE_KEY = (
    _RECORDS
    + """
local t, at = load_at(KEYS[1], 2, ARGV[1])
if not at then return false end
t[at + 1] = ARGV[2]
if ARGV[3] == '1' then t[at + 7] = ARGV[4] end
redis.call('SET', KEYS[1], encode(t))
return fields(t, at)
"""
)

# KEYS: records. ARGV: 1 (handle) or 2 (key), its value. The deleted record or false.
DELETE_SESSION = (
    _RECORDS
    + """
local t, at = load_at(KEYS[1], tonumber(ARGV[1]), ARGV[2])
if not at then return false end
local record = fields(t, at)
remove(t, at)
save(KEYS[1], t)
return record
"""
)

# KEYS: records. ARGV: '1' if there is an excepted handle, that handle. The deleted
# records: {user id, fields of each}.
DELETE_USER_SESSIONS = (
    _RECORDS
    + """
local t = load(KEYS[1])
if not t then return {} end
local kept, deleted = {t[1]}, {t[1]}
for at = 2, #t, NF do
  local into = (ARGV[1] == '1' and t[at] == ARGV[2]) and kept or deleted
  for k = 0, NF - 1 do into[#into + 1] = t[at + k] end
end
save(KEYS[1], kept)
if #deleted == 1 then return {} end
return deleted
"""
)

# KEYS: records. ARGV: handle, expected key, successor, now. The compare-and-swap step of
# refresh rotation (the decision is ``authstate.rotation``): only while the family still
# has the expected key, so a family rotated or deleted meanwhile is never written (nor
# re-created). Returns {1, record} when swapped, {0, current key or false} when not.
SWAP_REFRESH_KEY = (
    _RECORDS
    + """
local t, at = load_at(KEYS[1], 1, ARGV[1])
if not at then return {0, false} end
if t[at + 1] ~= ARGV[2] then return {0, t[at + 1]} end
t[at + 1], t[at + 17] = ARGV[3], '=' .. ARGV[2]
t[at + 18], t[at + 4] = ARGV[4], ARGV[4]
redis.call('SET', KEYS[1], encode(t))
return {1, fields(t, at)}
"""
)

# KEYS: records. ARGV: now. Deletes the user's records dead at ``now``. Returns {the
# earliest death among those left, or '' when none is left, then key, previous key ('' or
# '=' key) and handle of each deleted record}.
PURGE_USER = (
    _RECORDS
    + """
local t = load(KEYS[1])
if not t then return {''} end
local now, kept, out, soonest = dbl(ARGV[1]), {t[1]}, {''}, nil
for at = 2, #t, NF do
  local dies = dies_at(t, at)
  if dies <= now then
    out[#out + 1], out[#out + 2], out[#out + 3] = t[at + 1], t[at + 17], t[at]
  else
    if not soonest or dies < soonest then soonest = dies end
    for k = 0, NF - 1 do kept[#kept + 1] = t[at + k] end
  end
end
if #out > 1 then save(KEYS[1], kept) end
if soonest then out[1] = string.format('%.17g', soonest) end
return out
"""
)

# KEYS: due shard. ARGV: member, the score read, the new score or '' to remove. Only while
# the score is still the one read (a login since may have lowered it).
MOVE_DUE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# KEYS: bucket. ARGV: field, expected value, new value. Compare-and-set of a bucket entry.
SWAP_ENTRY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

# KEYS: bucket. ARGV: field, expected value. Compare-and-delete of a bucket entry.
DROP_ENTRY = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""

# KEYS: seq, log, until. ARGV: channel, body, until. The INCR, both log entries and the
# PUBLISH happen together, so subscribers see messages in seq order with no gap.
PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local entry = seq .. '|' .. ARGV[2]
redis.call('ZADD', KEYS[2], seq, entry)
redis.call('ZADD', KEYS[3], ARGV[3], entry)
redis.call('PUBLISH', ARGV[1], entry)
return seq
"""

# KEYS: epoch, seq, log. ARGV: seq, a fresh epoch id. The log's epoch (made now if the key
# is missing: an emptied or new Redis), head seq and the entries above ``seq``, together.
READ_LOG = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local entries = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf')
return {epoch, redis.call('GET', KEYS[2]) or '0', entries}
"""

# KEYS: seq, until. ARGV: now. The head seq and the entries still in force, together.
REVOCATIONS = """
return {redis.call('GET', KEYS[1]) or '0', redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')}
"""

# KEYS: log, until. ARGV: now. Forgets entries whose ``until`` has passed.
PURGE_CHANGES = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for _, entry in ipairs(stale) do redis.call('ZREM', KEYS[1], entry) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
return #stale
"""

# KEYS: bucket. ARGV: at, member ("<forget_at>|<random>"), forget_ms, window start.
RECORD_FAILURE = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf')
"""

# KEYS: bucket. ARGV: now. Returns {forgotten, left}.
PURGE_FAILURES = """
local forgotten = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if tonumber(string.match(member, '^[^|]+')) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], member)
    forgotten = forgotten + 1
  end
end
return {forgotten, redis.call('ZCARD', KEYS[1])}
"""

# KEYS: key hash, kid index. ARGV: kid, created_at, field, value, …
SAVE_KEY = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: key hash. ARGV: retire_after.
RETIRE_KEY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'retire_after', ARGV[1])
return 1
"""

# KEYS: user, username pointer, id set. ARGV: id, field, value, …
CREATE_USER = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""

# KEYS: user. ARGV: field, value, … (possibly none).
UPDATE_USER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
"""

# Session data's compare-and-set (``_redis_session_data``). KEYS: records. ARGV: handle,
# the data text the caller read, the merged text. false: no record; 0: the data changed
# since the read (the caller merges again into the new text); 1: written.
UPDATE_SESSION_DATA = (
    _RECORDS
    + """
local t, at = load_at(KEYS[1], 1, ARGV[1])
if not at then return false end
if t[at + 10] ~= ARGV[2] then return 0 end
t[at + 10] = ARGV[3]
redis.call('SET', KEYS[1], encode(t))
return 1
"""
)

# KEYS: grants hash, records. ARGV: '1' to set roles, roles JSON, '1' to set claims, claims
# JSON. Bumps the roles version and copies roles, claims and version into every record the
# user has (a deleted one is never re-created). Returns {version, roles JSON or false,
# claims JSON}.
SET_USER_GRANTS = (
    _RECORDS
    + """
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'roles', ARGV[2]) end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'claims', ARGV[4])
elseif redis.call('HEXISTS', KEYS[1], 'claims') == 0 then
  redis.call('HSET', KEYS[1], 'claims', '{}')
end
local g = redis.call('HMGET', KEYS[1], 'roles', 'claims')
local t = load(KEYS[2])
if t and #t > 1 then
  for at = 2, #t, NF do
    if g[1] then t[at + 7] = g[1] end
    t[at + 12], t[at + 13] = g[2], tostring(version)
  end
  redis.call('SET', KEYS[2], encode(t))
end
return {version, g[1], g[2]}
"""
)

# ``import_sessions``: many writes in one call, for keys of one node (on a cluster, of one
# master: ``allow-cross-slot-keys``; the keys travel in ARGV, since a cluster refuses a call
# whose KEYS are in several slots). ARGV: the number of key names n, the names, then triples
# (op, name index, value) and for 'h' and 'z' a fourth: 'h' HSETNX name field value, 's' SET
# name value NX, 'z' ZADD name LT score member. Returns how many HSETNX and SET NX found the
# field or key taken.
IMPORT = """#!lua flags=allow-cross-slot-keys
local n = tonumber(ARGV[1])
local taken, i = 0, n + 2
while i <= #ARGV do
  local op, key = ARGV[i], ARGV[1 + tonumber(ARGV[i + 1])]
  if op == 's' then
    if not redis.call('SET', key, ARGV[i + 2], 'NX') then taken = taken + 1 end
    i = i + 3
  elseif op == 'h' then
    taken = taken + 1 - redis.call('HSETNX', key, ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  else
    redis.call('ZADD', key, 'LT', ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  end
end
return taken
"""
