-- loadtests/bench.py: a streamed chat completion of 20 content chunks from the fake, with include_usage.
-- Each completed wrk "request" is one whole stream relayed to its end, so Requests/sec = completions/s.
local model = os.getenv("BENCH_MODEL") or "fake-gpt"
local key = os.getenv("BENCH_KEY")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Count to twenty."}],"stream":true,"stream_options":{"include_usage":true},"fake":{"chunks":20}}'
