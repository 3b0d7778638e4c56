"""The load side of bench_callback.py, in its own process: keep-alive clients posting one
recorded message in a loop for a fixed time, then requests/s, latency and errors."""
from __future__ import annotations

import json
import statistics
import sys
import threading
import time

import requests

CLIENTS = 16
BODY = json.dumps({"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": "alice", "To_Account": "bob",
                   "MsgKey": "1_2_3", "MsgBody": [{"MsgType": "TIMTextElem",
                                                    "MsgContent": {"Text": "周末一起去爬山吗？记得带水。" * 4}}]},
                  ensure_ascii=False).encode()
QUERY = {"SdkAppid": "1400000000", "CallbackCommand": "C2C.CallbackBeforeSendMsg", "contenttype": "json"}


def main(url: str, seconds: float) -> None:
    session = requests.Session()
    end = time.monotonic() + 30
    while True:  # wait for the server to come up
        try:
            session.post(url, params=QUERY, data=BODY, timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)

    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        own = requests.Session()
        mine, bad = [], 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                response = own.post(url, params=QUERY, data=BODY, timeout=5)
                ok = response.status_code == 200 and response.json().get("ErrorCode") == 0
            except (requests.RequestException, ValueError):
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    print(f"{len(latencies)} requests from {CLIENTS} keep-alive clients in {elapsed:.1f} s: "
          f"{len(latencies) / elapsed:.0f} requests/s, errors {errors[0]}")
    print(f"latency ms: p50 {latencies[len(latencies) // 2]:.2f}  p99 {latencies[int(len(latencies) * 0.99)]:.2f}  "
          f"max {latencies[-1]:.2f}  mean {statistics.fmean(latencies):.2f}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
