"""The M/M/c queue of bench/mmc.ts in SimPy 2.3 (Debian's python3-simpy), for the bench's ratio.

Poisson arrivals (rate LAMBDA) at one SimPy Resource with C servers, exponential service (rate MU),
first come first served: a Source process activates one Customer process per arrival, and each
customer requests a server, holds it for its service time and releases it (SimPy's classic bank
model). Prints one JSON line: customers, mean wait in the queue, wall seconds, customers per second.

Usage: python3 bench/mmc_simpy.py [CUSTOMERS] [SEED] [LAMBDA] [MU] [C]
"""

import json
import random
import sys
import time

from SimPy.Simulation import Process, Resource, activate, hold, initialize, now, release, request, simulate

CUSTOMERS = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
LAMBDA = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
MU = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
C = int(sys.argv[5]) if len(sys.argv) > 5 else 10

waits = [0.0, 0]


class Customer(Process):
    def visit(self, server, service):
        arrived = now()
        yield request, self, server
        waits[0] += now() - arrived
        waits[1] += 1
        yield hold, self, service
        yield release, self, server


class Source(Process):
    def generate(self, n, server, rng):
        for _ in range(n):
            c = Customer()
            activate(c, c.visit(server, rng.expovariate(MU)))
            yield hold, self, rng.expovariate(LAMBDA)


def main():
    rng = random.Random(SEED)
    initialize()
    server = Resource(capacity=C, name="mmc", unitName="server")
    source = Source()
    activate(source, source.generate(CUSTOMERS, server, rng))
    t0 = time.perf_counter()
    simulate(until=1e18)
    wall = time.perf_counter() - t0
    print(json.dumps({"customers": waits[1], "meanWait": waits[0] / max(1, waits[1]), "wallS": wall, "perS": waits[1] / wall}))


main()
