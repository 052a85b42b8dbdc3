// The bench's synchronous k6 script: one GET per iteration, as k6's documentation writes it.
import http from 'k6/http';

export default function () {
  const res = http.get(__ENV.BENCH_URL, { tags: { name: 'bench' } });
  if (res.status !== 200) throw new Error(`bench request failed: ${res.status} ${res.error}`);
}
