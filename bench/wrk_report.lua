-- Mosaic's load benchmark: prints wrk's summary as one JSON line that
-- bench/load/wrk.ts reads (latencies in microseconds).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MOSAIC_WRK {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"mean_us":%.1f,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,' ..
      '"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
