-- POST a streaming chat completion request; the fake upstream answers with 20 SSE chunks.
-- Each completed wrk "request" is one fully relayed stream, so Requests/sec = completions/s.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"stream":true,"fake":{"chunks":20}}'
