-- loadtests/bench.py, step 9: one request per backend type through gw, the same for every backend.
-- 19 user words: every fake answers "fake: <them>", 20 words (20 content chunks when streamed).
-- BENCH_MODEL picks the backend's public model; BENCH_STREAM=1 streams (chat: with include_usage);
-- BENCH_API=messages sends the Anthropic Messages form (to /v1/messages; bench.py picks the path),
-- BENCH_API=responses the OpenAI Responses form (to /v1/responses).
local model = os.getenv("BENCH_MODEL")
local key = os.getenv("BENCH_KEY")
local stream = os.getenv("BENCH_STREAM") == "1"
local messages_api = os.getenv("BENCH_API") == "messages"
local responses_api = os.getenv("BENCH_API") == "responses"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
local words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
local user = '{"role":"user","content":"' .. words .. '"}'
if responses_api then
  local tail = stream and ',"stream":true' or ""
  wrk.body = '{"model":"' .. model .. '","instructions":"Repeat after me.","input":[' .. user .. '],"max_output_tokens":64' .. tail .. '}'
elseif messages_api then
  local tail = stream and ',"stream":true' or ""
  wrk.body = '{"model":"' .. model .. '","system":"Repeat after me.","messages":[' .. user .. '],"max_tokens":64' .. tail .. '}'
else
  local tail = stream and ',"stream":true,"stream_options":{"include_usage":true}' or ""
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"Repeat after me."},' .. user .. '],"max_tokens":64' .. tail .. '}'
end
