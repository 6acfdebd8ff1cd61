"""The report: ``bench/results/<scale>.json``, a Markdown table and a PNG chart.

``python -m bench.report small`` re-renders the Markdown and the chart from the JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import bodies, config

P99_TARGET_MS = 50.0  # closed loop at 32 connections: the earlier issue's, kept as a guide
RATIO_TARGET = 0.7  # issue 10
LARGE_P50_TARGET = 1.25
OPEN_LOOP_P99_TARGET_MS = 25.0  # issue 10: get and curative, at half the floor's maximum rate
WORKER_RSS_TARGET_MIB = 120.0  # issue 10: peak RSS of each worker process


def open_loop_medians(results: dict[str, Any], target: str) -> list[dict[str, Any]]:
    """Per workers and scenario, the open-loop rounds of ``target``: the median p99, every
    round's, and the floor's median beside it."""
    groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for r in results.get("open_loop", []):
        groups.setdefault((r["workers"], r["scenario"], r["target"]), []).append(r)

    def median(runs: list[dict[str, Any]]) -> float | None:
        values = [r["p99_ms"] for r in runs if r["p99_ms"] is not None]
        return statistics.median(values) if values else None

    out = []
    for (workers, scenario, who), runs in groups.items():
        if who != target:
            continue
        out.append(
            {
                "workers": workers,
                "scenario": scenario,
                "rate_offered": runs[0]["rate_offered"],
                "p99_ms": median(runs),
                "p99s": " / ".join(str(r["p99_ms"]) for r in runs),
                "floor": median(groups.get((workers, scenario, "floor"), [])),
            }
        )
    return out


def _index(results: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {(r["target"], r["workers"], r["scenario"]): r for r in results["runs"]}


Pair = tuple[dict[str, Any], dict[str, Any]]


def small_reference(results: dict[str, Any]) -> tuple[dict[tuple[int, str], Pair] | None, str]:
    """Pairs (small, large) of service figures per (workers, scenario) for the p50 target:
    those a large run made itself (``config.REFERENCE`` and ``config.PAIRED`` runs, small,
    large, large, small, each side's p50 the mean of its runs), else the committed small
    results against this run's service."""
    sides: dict[str, dict[tuple[int, str], list[dict[str, Any]]]] = {
        config.REFERENCE: {},
        config.PAIRED: {},
    }
    for r in results["runs"]:
        if r["target"] in sides:
            sides[r["target"]].setdefault((r["workers"], r["scenario"]), []).append(r)
    if sides[config.REFERENCE]:
        pairs = {
            key: (_mean_p50(runs), _mean_p50(sides[config.PAIRED][key]))
            for key, runs in sides[config.REFERENCE].items()
            if key in sides[config.PAIRED]
        }
        return (
            pairs,
            "the service on the small register, run beside the large one for each scenario "
            "(small, large, large, small; p50 = mean of each side's runs)",
        )
    small = _load("small")
    if small is None:
        return None, "no small results"
    base = _index(small)
    pairs = {
        (r["workers"], r["scenario"]): (base[("service", r["workers"], r["scenario"])], r)
        for r in results["runs"]
        if r["target"] == "service" and ("service", r["workers"], r["scenario"]) in base
    }
    return pairs, f"results/small.json of {small['started_at']}"


def _p50s(figure: dict[str, Any]) -> str:
    """The p50 compared, with the runs it is the mean of when there are several."""
    runs = figure.get("runs") or []
    each = f" ({' / '.join(_ms(v) for v in runs)})" if len(runs) > 1 else ""
    return f"{_ms(figure['p50_ms'])}{each}"


def _mean_p50(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "p50_ms": sum(r["p50_ms"] for r in runs) / len(runs),
        "runs": [r["p50_ms"] for r in runs],
        "exhausted": any(r["exhausted"] for r in runs),
    }


def _load(scale: str) -> dict[str, Any] | None:
    path = config.RESULTS_DIR / f"{scale}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def ratio(service: dict[str, Any], floor: dict[str, Any]) -> float:
    """The service's throughput over the floor's: the median of its pairs' ratios (each pair
    run back to back, ``harness.Bench.pair``), or the two totals' for results recorded
    before pairs were repeated."""
    if "ratio" in service:
        return float(service["ratio"])
    return float(service["rps"] / floor["rps"]) if floor["rps"] else 0.0


def _errors(run: dict[str, Any]) -> int:
    return int(run["errors"]) + int(run["socket_errors"])


def targets(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """(target, holds?, details) for the targets of issue 10; ``None`` = not measured."""
    runs = _index(results)
    out: list[tuple[str, bool | None, str]] = []
    low = []
    for (target, workers, name), run in sorted(runs.items()):
        floor = runs.get(("floor", workers, name))
        if target == "service" and floor and floor["rps"] > 0:
            value = ratio(run, floor)
            if value < RATIO_TARGET:
                low.append(f"{name} w{workers} {value:.2f}×")
    measured = any(t == "service" for t, _, _ in runs)
    out.append(
        (
            f"every scenario ≥ {RATIO_TARGET}× the floor's throughput",
            (not low) if measured else None,
            "below: " + ", ".join(low) if low else "all at or above",
        )
    )
    if results["scale"] == "small":
        slow = [
            f"{name} w{workers} {_ms(run['p99_ms'])} ms"
            for (target, workers, name), run in sorted(runs.items())
            if target == "service" and run["p99_ms"] >= P99_TARGET_MS
        ]
        out.append(
            (
                f"p99 < {P99_TARGET_MS:.0f} ms at {results['settings']['connections']} "
                "connections, closed loop (small; a guide only: it measures 32/throughput)",
                (not slow) if measured else None,
                "above: " + ", ".join(slow) if slow else "all below",
            )
        )
        open_loop = open_loop_medians(results, "service")
        slow_open = [
            f"{r['scenario']} w{r['workers']} {r['p99_ms']} ms"
            for r in open_loop
            if r["p99_ms"] is None or r["p99_ms"] > OPEN_LOOP_P99_TARGET_MS
        ]
        out.append(
            (
                f"open loop: get and curative p99 ≤ {OPEN_LOOP_P99_TARGET_MS:.0f} ms at half "
                "the floor's maximum rate",
                (not slow_open) if open_loop else None,
                (
                    ", ".join(
                        f"{r['scenario']} w{r['workers']} at {r['rate_offered']:g} req/s: "
                        f"p99 {r['p99_ms']} ms (median of {r['p99s']} ms; floor {r['floor']} ms)"
                        for r in open_loop
                    )
                    if open_loop
                    else "not run (--no-open-loop)"
                ),
            )
        )
    else:
        pairs, source = small_reference(results)
        if pairs is None:
            out.append(("p50 at large within 1.25× of small", None, "no small results"))
        else:
            far, compared = [], []
            for (workers, name), (small_run, large_run) in sorted(pairs.items()):
                if small_run["p50_ms"] <= 0:
                    continue
                factor = large_run["p50_ms"] / small_run["p50_ms"]
                compared.append(f"{name} w{workers} {factor:.2f}×")
                if factor > LARGE_P50_TARGET:
                    far.append(f"{name} w{workers} {factor:.2f}×")
            out.append(
                (
                    f"p50 at large within {LARGE_P50_TARGET}× of small ({source})",
                    (not far) if compared else None,
                    ", ".join(compared) or "nothing comparable",
                )
            )
    worker_rss = [
        (r["scenario"], r["workers"], r["peak_worker_rss_mib"])
        for r in results["runs"]
        if r["target"] == "service" and "peak_worker_rss_mib" in r
    ]
    if worker_rss:
        peak = max(worker_rss, key=lambda item: item[2])
        out.append(
            (
                f"peak RSS per worker ≤ {WORKER_RSS_TARGET_MIB:.0f} MiB",
                peak[2] <= WORKER_RSS_TARGET_MIB,
                f"largest: {peak[2]:.0f} MiB ({peak[0]} w{peak[1]})",
            )
        )
    service = results.get("statements", {}).get("service", {})
    sizes = [k for k in service if k.startswith("curative_") and k.endswith("_anomalies")]
    if sizes:
        counts = {k.split("_")[1]: service[k]["sql"] for k in sizes}
        out.append(
            (
                "SQL statements per request constant in request size",
                len(set(counts.values())) == 1,
                "curative on " + ", ".join(f"{n} anomalies: {c:g}" for n, c in counts.items()),
            )
        )
    else:
        out.append(("SQL statements per request constant in request size", None, "not measured"))
    return out


def markdown(results: dict[str, Any]) -> str:
    runs = _index(results)
    settings = results["settings"]
    stmts = results.get("statements", {})
    lines = [
        f"# Benchmark at `{results['scale']}` scale",
        "",
        f"Run {results['started_at']} ({results['elapsed_s']} s) — {settings['duration_s']} s per "
        f"scenario run, {settings.get('rounds', 1)} run(s) on each side (service and floor back to "
        "back, the order alternating; *service/floor* is the median of the pairs' ratios), "
        f"{settings['connections']} connections, wrk {settings['wrk_threads']} "
        f"threads, {settings['load_organizations']} organisations' sessions; "
        f"{results['machine']['cpus']} CPUs; service at commit "
        f"`{results.get('source', {}).get('commit', '?')[:10]}`"
        f"{' (src/ modified)' if results.get('source', {}).get('src_modified') else ''}. "
        f"Reproduce: `bench/run --scale {results['scale']}`.",
        "",
    ]
    failing = [r for r in results["runs"] if _errors(r)]
    if failing:
        lines += ["> **ERRORS** — these runs had non-2xx answers or socket errors:", ">"]
        for r in failing:
            lines.append(
                f"> - {r['target']} w{r['workers']} {r['scenario']}: {_errors(r)} "
                f"({r['status_codes']}) {str(r.get('error_sample') or '')[:200]}"
            )
        lines.append("")
    drift = results.get("statements", {}).get("parity") or {}
    if drift:
        lines += [
            "> **FLOOR OUT OF SYNC** — the floor no longer sends the service's statements for: "
            + ", ".join(sorted(drift))
            + ". The service changed since bench/floor.py was written: update the floor "
            "(the JSON lists both sequences under statements.parity).",
            "",
        ]
    lines += ["## Targets", ""]
    for name, holds, details in targets(results):
        mark = "not measured" if holds is None else ("**holds**" if holds else "**does not hold**")
        lines.append(f"- {name}: {mark} — {details}")
    lines.append("")
    for workers in settings["workers"]:
        lines += [
            f"## {workers} worker{'s' if workers > 1 else ''}",
            "",
            "| scenario | service req/s | floor req/s | service/floor | pairs' ratios "
            "| service p50 / p99 ms "
            "| floor p50 / p99 ms | errors service / floor | SQL per request | peak RSS MiB "
            "service / floor | largest service worker MiB |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name in bodies.SCENARIOS:
            s, f = runs.get(("service", workers, name)), runs.get(("floor", workers, name))
            if s is None or f is None:
                continue
            value = ratio(s, f)
            each = " / ".join(f"{r:.2f}" for r in s.get("ratios", [])) or "–"
            sql = stmts.get("service", {}).get(name, {}).get("sql", "–")
            note = " ¹" if s["exhausted"] or f["exhausted"] else ""
            lines.append(
                f"| {name}{note} | {s['rps']:.0f} | {f['rps']:.0f} | **{value:.2f}** | {each} | "
                f"{_ms(s['p50_ms'])} / {_ms(s['p99_ms'])} | {_ms(f['p50_ms'])} / "
                f"{_ms(f['p99_ms'])} | {_errors(s)} / {_errors(f)} | {sql} | "
                f"{s['peak_rss_mib']:.0f} / {f['peak_rss_mib']:.0f} | "
                f"{s.get('peak_worker_rss_mib', float('nan')):.0f} |"
            )
        lines.append("")
    if results.get("open_loop"):
        lines += [
            "## Open loop: get and curative at half the floor's closed-loop rate",
            "",
            "Requests are sent at a constant rate whatever the answers (`bench/openloop.py`); "
            "a latency runs from when its request was due, so time waiting for a connection "
            "counts. Each is run in rounds, the service and the floor in turn; the target "
            "reads the median round's p99. *Late sends*: requests sent more than 1 ms after "
            "they were due (the client's own lag on the shared cores); *client CPU*: the "
            "client's CPU per request sent.",
            "",
            "| target | workers | scenario | round | offered req/s | achieved req/s | p50 / p90 "
            "/ p99 / max ms | late sends | client CPU µs/req | codes | socket errors |",
            "|---|--:|---|--:|--:|--:|--:|--:|--:|---|--:|",
        ]
        for r in results["open_loop"]:
            lines.append(
                f"| {r['target']} | {r['workers']} | {r['scenario']} | {r.get('round', 1)} | "
                f"{r['rate_offered']:g} | "
                f"{r['rate_achieved']:g} | {r['p50_ms']} / {r['p90_ms']} / **{r['p99_ms']}** / "
                f"{r['max_ms']} | {r.get('late_starts', '–')} | {r.get('client_cpu_us', '–')} | "
                f"{r['status_codes']} | {r['socket_errors']} |"
            )
        lines.append("")
    if results["scale"] == "large":
        pairs, source = small_reference(results)
        if pairs:
            lines += [
                "## p50 at large against small",
                "",
                f"Small: {source}.",
                "",
                "| scenario | workers | service p50 small ms | service p50 large ms "
                "| large / small |",
                "|---|--:|--:|--:|--:|",
            ]
            order = {name: i for i, name in enumerate(bodies.SCENARIOS)}
            for (workers, name), (small_run, large_run) in sorted(
                pairs.items(), key=lambda item: (item[0][0], order[item[0][1]])
            ):
                if small_run["p50_ms"] <= 0:
                    continue
                note = " ¹" if small_run["exhausted"] or large_run["exhausted"] else ""
                lines.append(
                    f"| {name}{note} | {workers} | {_p50s(small_run)} | {_p50s(large_run)} | "
                    f"**{large_run['p50_ms'] / small_run['p50_ms']:.2f}×** |"
                )
            lines.append("")
    if any(r["exhausted"] for r in results["runs"]):
        lines += [
            "¹ The scenario's supply (open anomalies, interventions awaiting verification) ran "
            "out before the end: throughput and latencies are over the requests actually made "
            "(see `ok` and `window_s` in the JSON). Such a scenario is run again, service and "
            "floor in turn, up to three times: its throughput is over all the runs' windows, "
            "its latencies the median run's (each run in `rounds`).",
            "",
        ]
    lines += [
        "SQL per request: statements other than BEGIN/COMMIT, counted in-process (the same "
        "for the floor by construction, checked statement by statement: see below).",
        "",
    ]
    if stmts:
        lines += [
            "## SQL statements per request (in-process)",
            "",
            "| request | service | floor | transactions |",
            "|---|--:|--:|--:|",
        ]
        for key, value in stmts.get("service", {}).items():
            if not isinstance(value, dict) or "sql" not in value:
                continue
            floor = stmts.get("floor", {}).get(key, {})
            spread = (
                f" ({value['sql_min']}–{value['sql_max']})"
                if value["sql_min"] != value["sql_max"]
                else ""
            )
            lines.append(
                f"| {key.replace('_', ' ')} | {value['sql']:g}{spread} | "
                f"{floor.get('sql', '–')} | {value['tx'] / 2:g} |"
            )
        lines.append("")
    lines += [
        "## Where the CPU went (cores busy on average during each service run)",
        "",
        "| run | server | postgres | wrk | others |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in results["runs"]:
        cpu = r["cpu_cores"]
        lines.append(
            f"| {r['target']} w{r['workers']} {r['scenario']} | {cpu['server']:.2f} | "
            f"{cpu['postgres']:.2f} | {cpu['wrk']:.2f} | {cpu['other']:.2f} |"
        )
    lines += [
        "",
        '"others" is every process outside the benchmark (another session\'s tests, say): '
        "above ~0.1 core the machine was not quiet and the figures are pessimistic.",
        "",
    ]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _index(results)
    workers = results["settings"]["workers"]
    names = [n for n in bodies.SCENARIOS if any(k[2] == n for k in runs)]
    fig, axes = plt.subplots(2, len(workers), figsize=(6.5 * len(workers), 8), squeeze=False)
    x = range(len(names))
    width = 0.38
    for col, w in enumerate(workers):
        top, bottom = axes[0][col], axes[1][col]
        for offset, target, color in (
            (-width / 2, "service", "#3b6ea5"),
            (width / 2, "floor", "#aaaaaa"),
        ):
            rps = [runs.get((target, w, n), {}).get("rps", 0) for n in names]
            p99 = [runs.get((target, w, n), {}).get("p99_ms", 0) for n in names]
            top.bar([i + offset for i in x], rps, width, label=target, color=color)
            bottom.bar([i + offset for i in x], p99, width, label=target, color=color)
        for i, n in enumerate(names):
            s, f = runs.get(("service", w, n)), runs.get(("floor", w, n))
            if s and f and f["rps"]:
                top.annotate(
                    f"{ratio(s, f):.2f}×",
                    (i, max(s["rps"], f["rps"])),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        top.set_title(f"{results['scale']}: throughput, {w} worker{'s' if w > 1 else ''}")
        top.set_ylabel("requests/s")
        bottom.set_title("p99 latency")
        bottom.set_ylabel("ms")
        if results["scale"] == "small":
            bottom.axhline(P99_TARGET_MS, color="#c0392b", linestyle="--", linewidth=1)
        for ax in (top, bottom):
            ax.set_xticks(list(x))
            ax.set_xticklabels(names, rotation=30, ha="right")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _abridge(results: dict[str, Any]) -> dict[str, Any]:
    """The committed JSON keeps what each statement does (``SELECT interventions``…);
    raw/<scale>-full.json has the statements whole."""
    from bench.measure import shape

    out: dict[str, Any] = json.loads(json.dumps(results))
    for target in ("service", "floor"):
        for value in out.get("statements", {}).get(target, {}).values():
            value["example"] = [shape(s) for s in value.get("example", [])]
    return out


def write(results: dict[str, Any]) -> Path:
    """Write ``<scale>.json``, ``.md`` and ``.png``; return the Markdown's path."""
    scale = results["scale"]
    config.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    config.RAW_DIR.mkdir(parents=True, exist_ok=True)
    (config.RAW_DIR / f"{scale}-full.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    (config.RESULTS_DIR / f"{scale}.json").write_text(
        json.dumps(_abridge(results), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    render(scale)
    return config.RESULTS_DIR / f"{scale}.md"


def render(scale: str) -> None:
    results = _load(scale)
    if results is None:
        raise SystemExit(f"no results for {scale}")
    (config.RESULTS_DIR / f"{scale}.md").write_text(markdown(results), encoding="utf-8")
    chart(results, config.RESULTS_DIR / f"{scale}.png")


if __name__ == "__main__":
    render(sys.argv[1] if len(sys.argv) > 1 else "small")
