-- loadtests/bench.py: a non-streaming chat completion; the same request to gw, the fake and the no-op app.
-- BENCH_MODEL (default fake-gpt) and BENCH_KEY (sent as a Bearer key when set) come from the environment.
local model = os.getenv("BENCH_MODEL") or "fake-gpt"
local key = os.getenv("BENCH_KEY")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
