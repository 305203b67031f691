-- An Envoy Lua filter, unchanged from what Envoy would run.
-- Request: greets the upstream with a header, denies /admin, records the body size.
-- Response: tags every response, shouts the body of /shout.

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  if string.sub(headers:get(":path"), 1, 6) == "/admin" then
    request_handle:respond({ [":status"] = "403", ["content-type"] = "text/plain" },
      "blocked by lua\n")
  end
  headers:add("x-greeting", request_handle:metadata():get("greeting") or "hello")
  if headers:get(":method") == "POST" then
    headers:add("request_body_size", request_handle:body(true):length())
  end
  request_handle:streamInfo():dynamicMetadata():set("envoy.filters.http.lua", "path",
    headers:get(":path"))
end

function envoy_on_response(response_handle)
  -- Also runs on the 403 made above; that request stopped before setting the metadata.
  local meta = response_handle:streamInfo():dynamicMetadata():get("envoy.filters.http.lua")
    or { path = "(local response)" }
  response_handle:headers():add("x-lua", "seen " .. meta.path)
  if meta.path == "/shout" then
    local body = response_handle:body()
    body:setBytes(string.upper(body:getBytes(0, body:length())))
  end
end
