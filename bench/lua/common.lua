-- Shared by every scenario: the data file, authenticated requests, status accounting and the
-- result line. Each scenario script sets `scenario` (a key of `builders`) and requires this.
--
-- Environment: BENCH_DATA (a Lua file returning sessions and id pools, written by
-- bench/pools.py), BENCH_THREADS (wrk's -t, to split the pools between threads).
--
-- Pools are split between threads so that no two threads use the same id. "Consumable" pools
-- (open anomalies, interventions awaiting verification) are used at most once per run: when a
-- thread has used its share it stops, and the result says `exhausted`. Throughput is measured
-- over the window from the first request to the last response, so an early stop still gives a
-- true rate; the harness restores the database between runs.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local M = {}

-- Bodies ---------------------------------------------------------------------------------------

local function ids(list)
  return "[" .. table.concat(list, ",") .. "]"
end

-- A different date for each request of a repeatable update, so that every PATCH changes the
-- intervention (a real UPDATE and a journal entry) instead of being a no-op.
local function day(n)
  return string.format("2025-%02d-%02d", 1 + math.floor(n / 28) % 12, 1 + n % 28)
end

M.consumable = { curative = true, verify = true }

M.builders = {
  get = function(item)
    -- BENCH_GET_PATH (bench/quick.py --get-path): the same load on another GET, e.g. /health
    return "GET", os.getenv("BENCH_GET_PATH") or ("/interventions/v2/rs/" .. item.id), nil
  end,
  curative = function(item)
    return "POST", "/interventions/v2/rs/curative", string.format(
      '{"scheduledStart":"2024-12-01T12:34:56.000Z","scheduledEnd":"2024-12-05T14:56:23.000Z",'
        .. '"anomalyIds":%s,"creationStatus":0,"description":"Description of the intervention",'
        .. '"assignedCompanyContactId":%d,"assignedUserId":%d}',
      ids(item.a), item.contact, item.profile)
  end,
  unplanned = function(item)
    return "POST", "/interventions/v2/mb/preventive/unplanned", string.format(
      '{"companyId":%d,"siteIds":%s,"ruleIds":%s,'
        .. '"signature":{"name":"example.jpg","mimeType":"image/jpeg","size":1024},'
        .. '"provider":{"firstName":"Provider name","lastName":"Provider name",'
        .. '"actionComment":"Action comment from the provider","email":"example@mail.fr",'
        .. '"comment":"General comment from the provider"},'
        .. '"actualStart":"2024-12-01T12:34:56.000Z"}',
      item.company, ids(item.sites), ids(item.rules))
  end,
  preventive = function(item, n)
    local d = day(n)
    return "PATCH", "/interventions/v2/rs/preventive/" .. item.id, string.format(
      '{"description":"Description of the intervention %d","scheduledStart":"%sT08:00:00.000Z",'
        .. '"scheduledEnd":"%sT12:00:00.000Z","siteRuleIds":%s,"creationStatus":1,'
        .. '"assignedCompanyContactId":%d,"assignedProfileId":%d,'
        .. '"sendUpdateEmailToCurrentAssignee":false,"previousAssigneeNotification":'
        .. '{"sendEmail":true,"reason":"The intervention details have changed."}}',
      n, d, d, ids(item.sr), item.contact, item.profile)
  end,
  training = function(item, n)
    local d = day(n)
    return "PATCH", "/interventions/v2/rs/training-exercise/" .. item.id, string.format(
      '{"description":"Description of the intervention %d","scheduledStart":"%sT08:00:00.000Z",'
        .. '"scheduledEnd":"%sT12:00:00.000Z","ruleId":%d,"siteIds":%s,"creationStatus":1,'
        .. '"assignedCompanyContactId":%d,"assignedUserId":%d,"validateIntervention":false}',
      n, d, d, item.rule, ids(item.sites), item.contact, item.profile)
  end,
  verify = function(item)
    return "PATCH", "/interventions/v2/rs/" .. item.id .. "/verify", string.format(
      '{"decisionComment":"Provider refused the intervention due to scheduling conflicts.",'
        .. '"decision":2,"notificationId":"%s"}', item.ntf)
  end,
}

-- The mixed workload: 20 reads and one of each of the five writes in every 25 requests.
local MIXED = {}
for k = 0, 24 do
  MIXED[k] = "get"
end
MIXED[4], MIXED[9], MIXED[14], MIXED[19], MIXED[24] =
  "curative", "unplanned", "preventive", "training", "verify"

-- wrk hooks --------------------------------------------------------------------------------------

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

local data, headers, pools, cursors
local counter = 0
-- Globals on purpose: done() reads them from each thread with thread:get().
ok, failed, codes, sample, first_at, last_at, exhausted = 0, 0, {}, nil, nil, nil, false

local function slice(list, nthreads)
  local mine = {}
  for i, item in ipairs(list or {}) do
    if (i - 1) % nthreads == tid then
      table.insert(mine, item)
    end
  end
  return mine
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  data = dofile(os.getenv("BENCH_DATA"))
  headers = {}
  for i, s in ipairs(data.sessions) do
    headers[i] = {
      ["Authorization"] = "Bearer " .. s.access,
      ["x-session-token"] = s.session,
      ["Content-Type"] = "application/json",
    }
  end
  pools, cursors = {}, {}
  for name, _ in pairs(M.builders) do
    pools[name] = slice(data[name], nthreads)
    cursors[name] = 0
  end
end

local function take(name)
  local pool = pools[name]
  local c = cursors[name]
  if #pool == 0 or (M.consumable[name] and c >= #pool) then
    return nil
  end
  cursors[name] = c + 1
  return pool[c % #pool + 1]
end

function request()
  local name = scenario
  if name == "mixed" then
    name = MIXED[counter % 25]
  end
  counter = counter + 1
  local item = take(name)
  if item == nil then
    exhausted = true
    wrk.thread:stop()
    return wrk.format("GET", "/health") -- not counted: the thread stops before reading it
  end
  if first_at == nil then
    first_at = now()
  end
  local method, path, body = M.builders[name](item, counter)
  return wrk.format(method, path, headers[item.s], body)
end

function response(status, _, body)
  last_at = now()
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    failed = failed + 1
    codes[tostring(status)] = (codes[tostring(status)] or 0) + 1
    if sample == nil then
      sample = string.sub(body or "", 1, 400)
    end
  end
end

-- A minimal JSON encoder for the result line (numbers, strings, booleans, flat tables).
local function json(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      table.insert(parts, string.format("%q:%s", tostring(k), json(v)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(ch)
      return string.format("\\u%04x", string.byte(ch))
    end) .. '"'
  elseif kind == "nil" then
    return "null"
  end
  return tostring(value)
end

function done(summary, latency, _)
  local total_ok, total_failed, all_codes, window_start, window_end = 0, 0, {}, nil, nil
  local any_exhausted, first_sample = false, nil
  for _, t in ipairs(threads) do
    total_ok = total_ok + (t:get("ok") or 0)
    total_failed = total_failed + (t:get("failed") or 0)
    for code, n in pairs(t:get("codes") or {}) do
      all_codes[code] = (all_codes[code] or 0) + n
    end
    local f, l = t:get("first_at"), t:get("last_at")
    if f and (window_start == nil or f < window_start) then window_start = f end
    if l and (window_end == nil or l > window_end) then window_end = l end
    any_exhausted = any_exhausted or t:get("exhausted")
    first_sample = first_sample or t:get("sample")
  end
  local window = (window_start and window_end) and (window_end - window_start) or 0
  local result = {
    scenario = scenario,
    ok = total_ok,
    errors = total_failed,
    status_codes = all_codes,
    error_sample = first_sample,
    exhausted = any_exhausted,
    window_s = window,
    rps = window > 0 and (total_ok + total_failed) / window or 0,
    wrk_requests = summary.requests,
    wrk_duration_s = summary.duration / 1e6,
    socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    p50_ms = latency:percentile(50) / 1000,
    p90_ms = latency:percentile(90) / 1000,
    p99_ms = latency:percentile(99) / 1000,
    max_ms = latency.max / 1000,
    mean_ms = latency.mean / 1000,
  }
  io.write("BENCH_RESULT " .. json(result) .. "\n")
end

return M
