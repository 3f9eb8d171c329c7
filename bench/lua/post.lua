-- wrk script: POST the bytes of $BENCH_BODY with Content-Type $BENCH_CTYPE; at the end print
-- one machine-readable line "BENCH_JSON {...}" (latencies in microseconds, and the histogram of
-- every latency recorded with its count).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE")
if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

done = function(summary, latency, requests)
  local e = summary.errors
  -- the histogram: every latency recorded (us) with its count, for percentiles over several runs
  local hist = {}
  for i = 1, #latency do
    local value, count = latency(i)
    hist[#hist + 1] = string.format("[%d,%d]", value, count)
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeout_errors":%d,"p50_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,' ..
    '"hist":[%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, table.concat(hist, ",")))
end
