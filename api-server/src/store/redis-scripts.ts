/**
 * The Lua scripts of RedisStore: each runs atomically in Redis, so every update that touches several keys (and the
 * seat policy's choose-and-take) is one step for every API Server. The key layout is described in redis.ts.
 */

const MAX_EVENTS = 10_000;

// Lua shared by the scripts. P is ARGV[1] in every script.
export const LUA_LIB = `
local P = ARGV[1]
local function stage_reply(arn)
  local h = redis.call('HGETALL', P .. 'stage:' .. arn)
  if #h == 0 then return false end
  h[#h + 1] = 'viewers'
  h[#h + 1] = tostring(redis.call('ZCARD', P .. 'seats:' .. arn))
  h[#h + 1] = 'connected'
  h[#h + 1] = tostring(redis.call('SCARD', P .. 'connected:' .. arn))
  return h
end
local function mark_empty(now)
  for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
    local k = P .. 'stage:' .. arn
    if redis.call('HGET', k, 'emptySince') == '' and redis.call('ZCARD', P .. 'seats:' .. arn) == 0 then
      redis.call('HSET', k, 'emptySince', now)
    end
  end
end
local function release_one(id)
  local arn = redis.call('HGET', P .. 'viewer:' .. id, 'stageArn')
  if not arn then return false end
  redis.call('DEL', P .. 'viewer:' .. id)
  redis.call('ZREM', P .. 'viewers', id)
  redis.call('ZREM', P .. 'moves', id)
  redis.call('ZREM', P .. 'seats:' .. arn, id)
  redis.call('SREM', P .. 'connected:' .. arn, id)
  return true
end
local function complete_move(id)
  local k = P .. 'viewer:' .. id
  if not redis.call('HGET', k, 'movedFrom') then return false end
  redis.call('HDEL', k, 'movedFrom', 'movedAt')
  redis.call('ZREM', P .. 'moves', id)
  return true
end
`;

export const SCRIPTS = {
  // ARGV: P, arn, createdAt, field, value, …
  scInsertStage: `
    local arn = ARGV[2]
    if redis.call('EXISTS', P .. 'stage:' .. arn) == 1 then return redis.error_reply('stage already stored: ' .. arn) end
    local kv = {}
    for i = 4, #ARGV do kv[#kv + 1] = ARGV[i] end
    redis.call('HSET', P .. 'stage:' .. arn, unpack(kv))
    redis.call('ZADD', P .. 'stages', ARGV[3], arn)
    return 1`,
  scGetStage: `return stage_reply(ARGV[2])`,
  scListStages: `
    local out = {}
    for _, arn in ipairs(redis.call('ZRANGE', P .. 'stages', 0, -1)) do
      local s = stage_reply(arn)
      if s then out[#out + 1] = s end
    end
    return out`,
  // ARGV: P, arn, field, value, … — only on a stored stage; 1 when it was.
  scSetStageFields: `
    local k = P .. 'stage:' .. ARGV[2]
    if redis.call('EXISTS', k) == 0 then return 0 end
    local kv = {}
    for i = 3, #ARGV do kv[#kv + 1] = ARGV[i] end
    redis.call('HSET', k, unpack(kv))
    return 1`,
  scRemoveStage: `
    local arn = ARGV[2]
    local ids = redis.call('ZRANGE', P .. 'seats:' .. arn, 0, -1)
    for _, id in ipairs(ids) do
      redis.call('DEL', P .. 'viewer:' .. id)
      redis.call('ZREM', P .. 'viewers', id)
      redis.call('ZREM', P .. 'moves', id)
    end
    redis.call('DEL', P .. 'seats:' .. arn, P .. 'connected:' .. arn, P .. 'stage:' .. arn)
    redis.call('ZREM', P .. 'stages', arn)
    return ids`,
  // ARGV: P, viewerId, userId ('' = null), now, only-this-stage ('' = any). The seat policy (seat-policy.ts
  // pickStage): the fullest active stage with room; stages are walked in listing order and only a strictly fuller
  // one replaces the best, so ties go to the older.
  scReserveSeat: `
    local id, user, now, only = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
    local arns
    if only ~= '' then arns = { only } else arns = redis.call('ZRANGE', P .. 'stages', 0, -1) end
    local best, bestN = nil, -1
    for _, arn in ipairs(arns) do
      local st = redis.call('HMGET', P .. 'stage:' .. arn, 'state', 'capacity')
      if st[1] == 'active' then
        local n = redis.call('ZCARD', P .. 'seats:' .. arn)
        if n < tonumber(st[2]) and n > bestN then best, bestN = arn, n end
      end
    end
    if not best then return false end
    local vk = P .. 'viewer:' .. id
    redis.call('HSET', vk, 'id', id, 'stageArn', best, 'joinedAt', now, 'lastSeen', now, 'connected', '0')
    if user ~= '' then redis.call('HSET', vk, 'userId', user) end
    redis.call('ZADD', P .. 'viewers', now, id)
    redis.call('ZADD', P .. 'seats:' .. best, now, id)
    redis.call('HSET', P .. 'stage:' .. best, 'emptySince', '')
    return stage_reply(best)`,
  scTouchViewer: `
    local k = P .. 'viewer:' .. ARGV[2]
    if redis.call('EXISTS', k) == 0 then return false end
    redis.call('HSET', k, 'lastSeen', ARGV[3])
    redis.call('ZADD', P .. 'viewers', ARGV[3], ARGV[2])
    return redis.call('HGETALL', k)`,
  scReleaseViewer: `
    if not release_one(ARGV[2]) then return 0 end
    mark_empty(ARGV[3])
    return 1`,
  // ARGV: P, olderThan (exclusive), now
  scReleaseStale: `
    local out = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'viewers', '-inf', '(' .. ARGV[2])) do
      local h = redis.call('HGETALL', P .. 'viewer:' .. id)
      if #h > 0 then out[#out + 1] = h end
      release_one(id)
    end
    if #out > 0 then mark_empty(ARGV[3]) end
    return out`,
  scSetConnected: `
    local id, arn = ARGV[2], ARGV[3]
    if redis.call('HGET', P .. 'viewer:' .. id, 'stageArn') ~= arn then return 0 end
    redis.call('HSET', P .. 'viewer:' .. id, 'connected', ARGV[4])
    if ARGV[4] == '1' then redis.call('SADD', P .. 'connected:' .. arn, id) else redis.call('SREM', P .. 'connected:' .. arn, id) end
    return 1`,
  // ARGV: P, id, field, value, … — returns the previous record (or false).
  scUpsertServer: `
    local k = P .. 'ms:' .. ARGV[2]
    local prev = redis.call('HGETALL', k)
    redis.call('DEL', k)
    local kv = {}
    for i = 3, #ARGV do kv[#kv + 1] = ARGV[i] end
    redis.call('HSET', k, unpack(kv))
    redis.call('SADD', P .. 'ms', ARGV[2])
    if #prev == 0 then return false end
    return prev`,
  // ARGV: P, id, field, value, … — on a known server only; returns it updated (or false).
  scPatchServer: `
    local k = P .. 'ms:' .. ARGV[2]
    if redis.call('EXISTS', k) == 0 then return false end
    if #ARGV > 2 then
      local kv = {}
      for i = 3, #ARGV do kv[#kv + 1] = ARGV[i] end
      redis.call('HSET', k, unpack(kv))
    end
    return redis.call('HGETALL', k)`,
  scStaleServers: `
    local out = {}
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'ms')) do
      local k = P .. 'ms:' .. id
      local st = redis.call('HMGET', k, 'state', 'lastHeartbeat')
      if st[1] == 'online' and tonumber(st[2]) < tonumber(ARGV[2]) then
        redis.call('HSET', k, 'state', 'offline')
        out[#out + 1] = redis.call('HGETALL', k)
      end
    end
    return out`,
  scListServers: `
    local out = {}
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'ms')) do
      local h = redis.call('HGETALL', P .. 'ms:' .. id)
      if #h > 0 then out[#out + 1] = h end
    end
    return out`,
  // ARGV: P, from, to, count, now. The newest seats of 'from' first (joinedAt desc, then id), as many as 'to' has room for.
  scMoveViewers: `
    local from, to, count, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
    if from == to then return {} end
    local st = redis.call('HMGET', P .. 'stage:' .. to, 'state', 'capacity')
    if st[1] ~= 'active' then return {} end
    local room = tonumber(st[2]) - redis.call('ZCARD', P .. 'seats:' .. to)
    local n = math.max(0, math.min(count, room))
    if n == 0 then return {} end
    local flat = redis.call('ZRANGE', P .. 'seats:' .. from, 0, -1, 'WITHSCORES')
    local seats = {}
    for i = 1, #flat, 2 do seats[#seats + 1] = { id = flat[i], at = tonumber(flat[i + 1]) } end
    table.sort(seats, function(a, b) if a.at ~= b.at then return a.at > b.at end return a.id < b.id end)
    local moved = {}
    for i = 1, math.min(n, #seats) do
      local id, at = seats[i].id, seats[i].at
      redis.call('HSET', P .. 'viewer:' .. id, 'stageArn', to, 'movedFrom', from, 'movedAt', now, 'connected', '0')
      redis.call('ZREM', P .. 'seats:' .. from, id)
      redis.call('SREM', P .. 'connected:' .. from, id)
      redis.call('ZADD', P .. 'seats:' .. to, at, id)
      redis.call('ZADD', P .. 'moves', now, id)
      moved[#moved + 1] = id
    end
    if #moved > 0 then
      redis.call('HSET', P .. 'stage:' .. to, 'emptySince', '')
      local fk = P .. 'stage:' .. from
      if redis.call('EXISTS', fk) == 1 and redis.call('ZCARD', P .. 'seats:' .. from) == 0 then redis.call('HSET', fk, 'emptySince', now) end
    end
    return moved`,
  // ARGV: P, olderThan ('+inf': every move). Flat: id, to, from, at, …
  scListMoves: `
    local out = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'moves', '-inf', ARGV[2])) do
      local v = redis.call('HMGET', P .. 'viewer:' .. id, 'stageArn', 'movedFrom', 'movedAt')
      if v[1] and v[2] then
        out[#out + 1] = id; out[#out + 1] = v[1]; out[#out + 1] = v[2]; out[#out + 1] = v[3]
      end
    end
    return out`,
  scCompleteMove: `if complete_move(ARGV[2]) then return 1 end return 0`,
  scExpireMoves: `
    local out = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'moves', '-inf', '(' .. ARGV[2])) do
      local v = redis.call('HMGET', P .. 'viewer:' .. id, 'stageArn', 'movedFrom', 'movedAt')
      if complete_move(id) and v[2] then
        out[#out + 1] = id; out[#out + 1] = v[1]; out[#out + 1] = v[2]; out[#out + 1] = v[3]
      end
    end
    return out`,
  // ARGV: P, first minute, to (exclusive). Flat: minute, field, value, …, '' between minutes.
  scListUsage: `
    local out = {}
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'usage_minutes', ARGV[2], '(' .. ARGV[3])) do
      out[#out + 1] = redis.call('HGETALL', P .. 'usage:' .. m)
      out[#out + 1] = m
    end
    return out`,
  // ARGV: P, JSON of the event without its id (an object: starts with '{').
  scAddEvent: `
    local id = redis.call('INCR', P .. 'event_id')
    local body = ARGV[2]
    local json = '{"id":' .. id
    if #body > 2 then json = json .. ',' .. string.sub(body, 2) else json = json .. '}' end
    redis.call('LPUSH', P .. 'events', json)
    redis.call('LTRIM', P .. 'events', 0, ${MAX_EVENTS - 1})
    return id`,
} as const;
