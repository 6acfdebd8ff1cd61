"""A quick look while changing src/: one server, a few scenarios, CPU per request.

``python -m bench.quick --scenarios get,curative --duration 5`` starts the service (one
worker by default) on the generated database, logs in, runs each scenario once with wrk
and prints throughput, p50/p99 and the server's **CPU milliseconds per request**. That last
figure barely moves when something else uses the machine, so it is the one to watch while
iterating; the full comparison with the floor stays ``bench/run``. ``--target floor`` runs
the floor instead. ``--get-path /health`` sends the ``get`` scenario's load (same headers) to
another path: what the framework costs around a trivial endpoint. Nothing is written to
``bench/results/`` except raw wrk outputs.
"""

from __future__ import annotations

import argparse
import os

from bench import harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--scenarios", default="get,curative,preventive,mixed")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--target", choices=("service", "floor"), default="service")
    parser.add_argument("--get-path", help="path the get scenario requests instead")
    args = parser.parse_args()
    if args.get_path:
        os.environ["BENCH_GET_PATH"] = args.get_path  # read by lua/common.lua in wrk
    options = harness.parse(
        [
            "--scale",
            args.scale,
            "--duration",
            str(args.duration),
            "--scenarios",
            args.scenarios,
            "--workers",
            str(args.workers),
            "--quiet-budget",
            "0",
        ]
    )
    bench = harness.Bench(options)
    scale = options.scale
    try:
        bench.prepare()
        make = harness.service_server if args.target == "service" else harness.floor_server
        port = options.port if args.target == "service" else options.port + 1
        bench.target(make(scale, args.workers, port), args.target, args.workers)
    finally:
        bench.close()
    print(f"{'scenario':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for run in bench.runs:
        cpu = run["cpu_cores"]["server"] / max(run["rps"], 1e-9) * 1000
        print(
            f"{run['scenario']:12} {run['rps']:8.1f} {run['p50_ms']:8.1f} {run['p99_ms']:8.1f}"
            f" {cpu:11.2f}"
        )


if __name__ == "__main__":
    main()
