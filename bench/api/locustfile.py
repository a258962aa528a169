"""100 clients on three representative endpoints (paths and key from the environment)."""

import os

from locust import FastHttpUser, constant, task

KEY = os.environ["LINLI_BENCH_KEY"]
PATHS = os.environ["LINLI_BENCH_PATHS"].split("|")
HEADERS = {"X-API-Key": KEY}


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def residents(self):
        self.client.get(PATHS[0], name="residents", headers=HEADERS)

    @task
    def door_access(self):
        self.client.get(PATHS[1], name="door_access", headers=HEADERS)

    @task
    def houses(self):
        self.client.get(PATHS[2], name="houses", headers=HEADERS)
