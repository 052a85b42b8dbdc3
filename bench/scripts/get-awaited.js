// The bench's awaited k6 script: the same GET per iteration, written with await.
import http from 'k6/http';

export default async function () {
  const res = await http.get(__ENV.BENCH_URL, { tags: { name: 'bench' } });
  if (res.status !== 200) throw new Error(`bench request failed: ${res.status} ${res.error}`);
}
