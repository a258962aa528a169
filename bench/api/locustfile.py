"""Clients on three representative endpoints (paths, key and pace from the environment).

LINLI_BENCH_RATE: requests a second each client sends, on average (0: as fast as answers come
back). The wait between requests is random, so that clients do not fire in step.
"""

import os

from locust import FastHttpUser, between, constant, task

KEY = os.environ["LINLI_BENCH_KEY"]
PATHS = os.environ["LINLI_BENCH_PATHS"].split("|")
HEADERS = {"X-API-Key": KEY}
RATE = float(os.environ.get("LINLI_BENCH_RATE", "0"))


class Client(FastHttpUser):
    wait_time = between(0.5 / RATE, 1.5 / RATE) if RATE else constant(0)

    @task
    def residents(self):
        self.client.get(PATHS[0], name="residents", headers=HEADERS)

    @task
    def door_access(self):
        self.client.get(PATHS[1], name="door_access", headers=HEADERS)

    @task
    def houses(self):
        self.client.get(PATHS[2], name="houses", headers=HEADERS)
