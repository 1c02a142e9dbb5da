"""The Lua scripts of the Redis store: each one atomic, and on a cluster inside one hash slot.

Every key a script touches is passed in ``KEYS`` and carries the same hash tag (see
``_redis_layout``), so the scripts run unchanged on Redis Cluster. The exceptions are the
``…_BY_KEY`` scripts, flagged ``no-cluster``: they follow a key pointer to the record on the
server, a key in another slot that they spell themselves, which saves a round trip on a
standalone Redis and is refused by a cluster (the store does not call them there).

Times travel as the decimal text Python wrote (``repr`` of a float); a script compares them
with ``tonumber`` but never writes a float it computed, because Lua formats numbers with 14
digits and the stored value would no longer round-trip. Milliseconds for ``PEXPIREAT`` are
the exception: they are whole numbers, formatted with ``%.0f``.
"""

from __future__ import annotations

# Shared prologue: when a record dies (absolute or idle expiry), as a Unix time.
_DIES_AT = """
local function dies_at(expires, idle, last_seen)
  expires, idle = tonumber(expires), tonumber(idle)
  if idle > 0 and tonumber(last_seen) + idle < expires then
    return tonumber(last_seen) + idle
  end
  return expires
end
local function expire_at(key, unix)
  redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil(unix * 1000)))
end
"""

# KEYS: record, index, counter. ARGV: handle, created_at, dies_ms, expires_ms, field, value, …
CREATE_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'ins', n, unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
-- The index and the insertion counter live as long as the longest-lived session in them.
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  if redis.call('PEXPIRETIME', key) < tonumber(ARGV[4]) then
    redis.call('PEXPIREAT', key, ARGV[4])
  end
end
return 1
"""

# Shared prologue of the ``…_BY_KEY`` scripts: the record a key pointer names, or nil when
# only the caller can spell it. ``head`` and ``tail`` come from ``Layout.session_parts``;
# the pattern and length are ``_PLAIN_USER`` of ``_redis_layout`` (a test keeps them equal).
# Any other user id is tagged with a SHA-256 digest, which Lua cannot compute, and a pointer
# cjson will not decode (a lone surrogate escape) is left to the caller's JSON parser.
_RECORD_NAME = """
local function record_name(pointer, head, tail)
  local ok, ref = pcall(cjson.decode, pointer)
  if not ok or type(ref) ~= 'table' then return nil end
  local user, handle = ref[1], ref[2]
  if type(user) ~= 'string' or type(handle) ~= 'string' or #user > 64
     or not string.find(user, '^[A-Za-z0-9%._@:%+%-]+$') then
    return nil
  end
  return head .. user .. tail .. handle
end
"""

# Shared prologue: slide a record's idle expiry to ``last_seen``; never move it back.
# Returns 1 when the record has ``key`` (touched or already newer), 0 when it does not.
_TOUCH = (
    _DIES_AT
    + """
local function touch(record, key, last_seen)
  local f = redis.call('HMGET', record, 'key', 'last_seen_at', 'expires_at', 'idle_timeout')
  if f[1] ~= key then return 0 end  -- no such session (any more): the caller drops its copy
  if tonumber(last_seen) <= tonumber(f[2]) then return 1 end
  redis.call('HSET', record, 'last_seen_at', last_seen)
  expire_at(record, dies_at(f[3], f[4], last_seen))
  return 1
end
"""
)

# KEYS: record. ARGV: key, last_seen_at. Slides idle expiry; never moves last_seen back.
TOUCH_SESSION = (
    _TOUCH
    + """
return touch(KEYS[1], ARGV[1], ARGV[2])
"""
)

# KEYS: key pointer. ARGV: key, head, tail, '1' for any record the pointer names. Standalone
# Redis only. The record whose current key is ``key`` (HGETALL; or, with '1', the record the
# pointer names whatever its key: a refresh family that consumed ``key``), false when there
# is none, or the pointer itself when the caller must read the record (see ``_RECORD_NAME``).
# The pointer is a hint: the record decides.
GET_BY_KEY = (
    "#!lua flags=no-writes,no-cluster\n"
    + _RECORD_NAME
    + """
local pointer = redis.call('GET', KEYS[1])
if not pointer then return false end
local record = record_name(pointer, ARGV[2], ARGV[3])
if not record then return pointer end
if ARGV[4] ~= '1' and redis.call('HGET', record, 'key') ~= ARGV[1] then return false end
return redis.call('HGETALL', record)
"""
)

# KEYS: key pointer. ARGV: key, last_seen_at, head, tail. Standalone Redis only. TOUCH_SESSION
# through the pointer: 1 or 0 as it returns, or the pointer when the caller must touch.
TOUCH_BY_KEY = (
    "#!lua flags=no-cluster\n"
    + _RECORD_NAME
    + _TOUCH
    + """
local pointer = redis.call('GET', KEYS[1])
if not pointer then return 0 end
local record = record_name(pointer, ARGV[3], ARGV[4])
if not record then return pointer end
return touch(record, ARGV[1], ARGV[2])
"""
)

# KEYS: record. ARGV: old key, new key, '1' to set roles, roles JSON.
REPLACE_KEY = """
if redis.call('HGET', KEYS[1], 'key') ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'key', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'roles', ARGV[4]) end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: record, index. ARGV: handle, '1' to require key == ARGV[3], key.
DELETE_SESSION = """
if ARGV[2] == '1' and redis.call('HGET', KEYS[1], 'key') ~= ARGV[3] then return false end
local record = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if #record == 0 then return false end
return record
"""

# KEYS: index, record1 … recordN. ARGV: '1' if there is an excepted handle, that handle,
# handle1 … handleN. Returns the deleted records.
DELETE_USER_SESSIONS = """
local deleted = {}
for i = 2, #KEYS do
  local handle = ARGV[i + 1]
  if not (ARGV[1] == '1' and handle == ARGV[2]) then
    local record = redis.call('HGETALL', KEYS[i])
    if #record > 0 then
      redis.call('DEL', KEYS[i])
      deleted[#deleted + 1] = record
    end
    redis.call('ZREM', KEYS[1], handle)
  end
end
return deleted
"""

# KEYS: record. ARGV: expected key, successor, now. The compare-and-swap step of refresh
# rotation (the decision is ``authstate.rotation``): only while the record still has the
# expected key, so a family rotated or deleted meanwhile is never written (nor re-created).
# The expected key's pointer stays: a pointer to a family that moved on is a consumed key.
# Returns {1, record} when swapped, {0, current key or false} when not.
SWAP_REFRESH_KEY = (
    _DIES_AT
    + """
local f = redis.call('HMGET', KEYS[1], 'key', 'expires_at', 'idle_timeout')
if f[1] ~= ARGV[1] then return {0, f[1]} end
redis.call('HSET', KEYS[1], 'key', ARGV[2], 'previous_key', ARGV[1],
           'rotated_at', ARGV[3], 'last_seen_at', ARGV[3])
expire_at(KEYS[1], dies_at(f[2], f[3], ARGV[3]))
return {1, redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: record, index. ARGV: now, handle. Deletes the record if it is dead at ``now``.
PURGE_SESSION = (
    _DIES_AT
    + """
local f = redis.call('HMGET', KEYS[1], 'expires_at', 'idle_timeout', 'last_seen_at', 'key')
if not f[1] then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {'gone'}
end
local dies = dies_at(f[1], f[2], f[3])
if dies <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {'dead', f[4]}
end
return {'alive', string.format('%.17g', dies)}
"""
)

# KEYS: pointer. ARGV: expected value, new value, 'PX' or 'PXAT', ms. Compare-and-set.
SWAP_POINTER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""

# KEYS: pointer. ARGV: expected value. Compare-and-delete.
DROP_POINTER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
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

# Session data's compare-and-set (``_redis_session_data``). KEYS: record. ARGV: the data
# text the caller read, the merged text. false: no record; 0: the data changed since the
# read (the caller merges again into the new text); 1: written.
UPDATE_SESSION_DATA = """
local current = redis.call('HGET', KEYS[1], 'data')
if not current then return false end
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[2])
return 1
"""

# KEYS: grants hash, then the user's records. ARGV: '1' to set roles, roles JSON, '1' to set
# claims, claims JSON. Bumps the roles version and copies roles, claims and version into
# every record that still exists (a deleted one is never re-created). Returns
# {version, roles JSON or false, claims JSON}.
SET_USER_GRANTS = """
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'roles', ARGV[2]) end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'claims', ARGV[4])
elseif redis.call('HEXISTS', KEYS[1], 'claims') == 0 then
  redis.call('HSET', KEYS[1], 'claims', '{}')
end
local g = redis.call('HMGET', KEYS[1], 'roles', 'claims')
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if g[1] then redis.call('HSET', KEYS[i], 'roles', g[1]) end
    redis.call('HSET', KEYS[i], 'claims', g[2], 'roles_version', version)
  end
end
return {version, g[1], g[2]}
"""
