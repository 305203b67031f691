/**
 * The Lua side of the `lua` filter: Envoy's handle API written in Lua over one host
 * function, and the sandbox every script runs in. Kept as a string so the filter reads no
 * file at run time (`deno compile` ready).
 *
 * The host function is `host(op, ...)` with the `Op` numbers of `vm.ts`; what must wait
 * (a body, an HTTP call) or ends the script (`respond`) is a `coroutine.yield` of a `Yield`
 * number to the host, which resumes the stream's coroutine with the answer.
 *
 * @module
 */

/** The prelude chunk; called once with the host function, returns the entry points. */
export const PRELUDE = String.raw`
local host = ...
local yield, type, tostring, setmetatable, pairs, ipairs, next, error, rawget, select =
  coroutine.yield, type, tostring, setmetatable, pairs, ipairs, next, error, rawget, select
local concat, gmatch, sub = table.concat, string.gmatch, string.sub
local load, collectgarbage = load, collectgarbage

local function str(v, what)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  error(what .. ": expected a string, got " .. t, 3)
end

-- "k\0v\0k\0v\0" for respond() and httpCall()
local function ser(h)
  if h == nil then return "" end
  if type(h) ~= "table" then error("headers: expected a table, got " .. type(h), 3) end
  local out, n = {}, 0
  for k, v in pairs(h) do
    if type(v) == "table" then
      for _, x in ipairs(v) do n = n + 1; out[n] = str(k, "header name") .. "\0" .. str(x, "header value") .. "\0" end
    else
      n = n + 1; out[n] = str(k, "header name") .. "\0" .. str(v, "header value") .. "\0"
    end
  end
  return concat(out)
end

local function unser(s)
  local t = {}
  for k, v in gmatch(s, "([^\0]*)\0([^\0]*)\0") do
    local old = t[k]
    if old == nil then t[k] = v elseif type(old) == "table" then old[#old + 1] = v else t[k] = { old, v } end
  end
  return t
end

local Headers = {}
Headers.__index = Headers
function Headers:get(k) return host(1, self.w, str(k, "key")) end
function Headers:getAtIndex(k, i) return host(2, self.w, str(k, "key"), i) end
function Headers:getNumValues(k) return host(3, self.w, str(k, "key")) end
function Headers:add(k, v) host(4, self.w, str(k, "key"), str(v, "value")) end
function Headers:replace(k, v) host(5, self.w, str(k, "key"), str(v, "value")) end
function Headers:remove(k) host(6, self.w, str(k, "key")) end
function Headers:pairs() return gmatch(host(7, self.w), "([^\0]*)\0([^\0]*)\0") end
function Headers:setHttp1ReasonPhrase() end

local Buffer = {}
Buffer.__index = Buffer
function Buffer:length() return #self.s end
function Buffer:getBytes(i, n)
  i = i or 0; n = n or #self.s
  return sub(self.s, i + 1, i + n)
end
function Buffer:setBytes(s)
  s = str(s, "body"); host(8, self.w, s); self.s = s
  return #s
end

local Metadata = {}
Metadata.__index = Metadata
function Metadata:get(k) return self.t[k] end
function Metadata:pairs() return next, self.t, nil end

local DynamicMetadata = {}
DynamicMetadata.__index = DynamicMetadata
function DynamicMetadata:get(ns) return host(15, str(ns, "filter name")) end
function DynamicMetadata:set(ns, k, v) host(16, str(ns, "filter name"), str(k, "key"), v) end
function DynamicMetadata:pairs() return next, host(17), nil end
local dynamic = setmetatable({}, DynamicMetadata)

local StreamInfo = {}
StreamInfo.__index = StreamInfo
function StreamInfo:protocol() return host(13) end
function StreamInfo:downstreamRemoteAddress() return host(14) end
function StreamInfo:downstreamDirectRemoteAddress() return host(14) end
function StreamInfo:routeName() return host(19) end
-- Not known to filters yet: no SNI is seen by a stream (Envoy answers "" without one).
function StreamInfo:requestedServerName() return "" end
function StreamInfo:dynamicMetadata() return dynamic end
local info = setmetatable({}, StreamInfo)

local function handle(w)
  local H = {}
  H.__index = H
  local headers = setmetatable({ w = w }, Headers)
  function H:headers() return headers end
  function H:body(always_wrap_body)
    local s = yield(2, w)
    if s == "" and not always_wrap_body then return nil end
    return setmetatable({ w = w, s = s }, Buffer)
  end
  function H:bodyChunks()
    local done = false
    return function()
      if done then return nil end
      done = true
      local s = yield(2, w)
      if s == "" then return nil end
      return setmetatable({ w = w, s = s }, Buffer)
    end
  end
  function H:trailers() return nil end
  function H:respond(h, body)
    if w ~= 0 then error("respond() can only be called from envoy_on_request", 2) end
    host(9, ser(h), body == nil and "" or str(body, "body"))
    yield(1)
  end
  function H:httpCall(cluster, h, body, timeout, options)
    local async = options == true or (type(options) == "table" and options.asynchronous == true)
    local hs, b, err = yield(3, str(cluster, "cluster"), ser(h), body == nil and "" or str(body, "body"),
      timeout or 0, async)
    if async then return end
    if hs == nil then error(err, 2) end
    return unser(hs), b
  end
  function H:streamInfo() return info end
  -- The route is matched after before_route filters: a header change is already seen.
  function H:clearRouteCache() end
  function H:metadata() return setmetatable({ t = host(18) }, Metadata) end
  function H:base64Escape(s) return host(11, str(s, "input")) end
  function H:timestamp(r) return host(12, r or 0) end
  function H:timestampString(r) return tostring(host(12, r or 0)) end
  function H:logTrace(m) host(10, 0, str(m, "message")) end
  function H:logDebug(m) host(10, 1, str(m, "message")) end
  function H:logInfo(m) host(10, 2, str(m, "message")) end
  function H:logWarn(m) host(10, 3, str(m, "message")) end
  function H:logErr(m) host(10, 4, str(m, "message")) end
  function H:logCritical(m) host(10, 5, str(m, "message")) end
  return setmetatable({}, H)
end

-- The sandbox: base (without load, loadfile, dofile), string, table, math, utf8, coroutine.
string.dump = nil
local safe = {}
for _, k in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall",
  "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring",
  "type", "xpcall", "_VERSION" }) do safe[k] = _G[k] end
function safe.print(...)
  local n, out = select("#", ...), {}
  for i = 1, n do out[i] = tostring((select(i, ...))) end
  host(10, 2, concat(out, "\t"))
end
function safe.collectgarbage(opt, ...)
  if opt == nil or opt == "collect" or opt == "count" or opt == "step" or opt == "isrunning" then
    return collectgarbage(opt, ...)
  end
  error("collectgarbage: option " .. tostring(opt) .. " is not allowed", 2)
end
local libs = { string = string, table = table, math = math, utf8 = utf8, coroutine = coroutine }
local resolution = { MILLISECOND = 0, MICROSECOND = 1 }

local function new_env()
  local env = {}
  for k, v in pairs(safe) do env[k] = v end
  for name, lib in pairs(libs) do
    local copy = {}
    for k, v in pairs(lib) do copy[k] = v end
    env[name] = copy
  end
  env.EnvoyTimestampResolution = setmetatable({}, { __index = resolution })
  env._G = env
  return env
end

local function compile(code, name)
  local env = new_env()
  local fn, err = load(code, "=" .. name, "t", env)
  if not fn then error(err, 0) end
  fn()
  return rawget(env, "envoy_on_request"), rawget(env, "envoy_on_response")
end

local function collect() collectgarbage("collect") end

local G = _G
for k in next, G do G[k] = nil end
return compile, handle(0), handle(1), collect
`;
