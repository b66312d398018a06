-- wrk script for services/control/bench/api.sh: every request carries
-- `Authorization: Bearer $BENCH_TOKEN`; BENCH_METHOD=POST sends the JSON
-- body "{}" (a trigger with the default conf). done() prints one parseable
-- RESULT line beside wrk's own --latency report.
local method = os.getenv("BENCH_METHOD") or "GET"
wrk.method = method
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
wrk.headers["Accept"] = "application/json"
if method == "POST" then
  wrk.body = "{}"
  wrk.headers["Content-Type"] = "application/json"
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT %s req/s=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d socket_errors=%d non2xx=%d\n",
    os.getenv("BENCH_NAME") or method, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
