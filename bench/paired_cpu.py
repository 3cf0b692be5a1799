"""Server CPU per single reading post: this tree against another revision, in pairs, on PostgreSQL.

A machine's speed drifts within minutes (the same code measured 12 and 19 ms a post in one
session), so runs taken in turn minutes apart cannot show a change of 10%. This bench seeds one
database (migrate, the demo study, --sessions sessions in progress with an hour of history each:
bench/alert_latency.py's seed), clones it for each of two servers (`git worktree` of --base, and
this tree; one uvicorn worker each, the scheduler off) started side by side, then alternates
--seconds of `wrk` single posts (bench/ingest.py's script, 8 connections) between them for
--pairs pairs, the order flipped each pair. Each load's CPU of that server's process and of
PostgreSQL, per request, is read from /proc (bench/ingest.py `_measured`). Prints each pair and
the ratios this/base; the last line is one JSON object (medians and ranges).

Needs `wrk`. Run: `.venv/bin/python bench/paired_cpu.py --base REV [--pairs 12] [--seconds 3]`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from alert_latency import VIGIL, _drop, _scratch_database, _seed  # noqa: E402
from ingest import _measured  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def _serve(tree: Path, url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`vigil serve` of ``tree``'s code (its app package first on the path)."""
    env = os.environ | {
        "VIGIL_DATABASE_URL": url,
        "VIGIL_LOG_LEVEL": "warning",
        "VIGIL_SCHEDULER_INTERVAL_SECONDS": "0",
        "PYTHONPATH": str(tree),
    }
    command = [PYTHON, "-c", "from app.cli import main; main()", "serve", "--port", str(port)]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, cwd=tree, stdout=sink, stderr=sink)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server of {tree} did not start: {log.read_text()[-2000:]}")


def _clone(admin: str, template: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def _range(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--port", type=int, default=8797)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="vigil-paired-"))
    base_tree = scratch / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
        check=True,
        capture_output=True,
    )
    url, template = _scratch_database(args.postgres)
    assert template is not None
    env = os.environ | {"VIGIL_DATABASE_URL": url, "VIGIL_LOG_LEVEL": "warning"}
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    clones = [f"{template}_{side}" for side in ("base", "this")]
    cpu: dict[str, list[float]] = {"base": [], "this": []}
    postgres: dict[str, list[float]] = {"base": [], "this": []}
    try:
        for command in (["migrate"], ["demo"]):
            subprocess.run([VIGIL, *command], env=env, check=True, capture_output=True)
        seed = _seed(url, args.sessions, 1.0)
        for i, (side, tree) in enumerate((("base", base_tree), ("this", ROOT))):
            _clone(args.postgres, template, clones[i])
            clone_url = url.rsplit("/", 1)[0] + "/" + clones[i]
            port = args.port + i
            servers[side] = (_serve(tree, clone_url, port, scratch / f"{side}.log"), port)
        for pair in range(args.pairs):
            for side in ("base", "this") if pair % 2 == 0 else ("this", "base"):
                server, port = servers[side]
                run: dict[str, Any] = _measured(
                    server, f"http://127.0.0.1:{port}", seed, 8, 1, args.seconds
                )
                cpu[side].append(run["server_cpu_ms_per_request"])
                postgres[side].append(run["postgres_cpu_ms_per_request"])
                if run["non_2xx"]:
                    raise RuntimeError(f"{side}: {run['non_2xx']} posts were not answered 2xx")
            print(
                f"pair {pair + 1:2}: base {cpu['base'][-1]:6.2f} ms, this {cpu['this'][-1]:6.2f} ms"
                f" of server CPU a post, ratio {cpu['this'][-1] / cpu['base'][-1]:.3f}",
                flush=True,
            )
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
        for name in [*clones, template]:
            _drop(args.postgres, name)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
            check=False,
            capture_output=True,
        )
    ratios = [this / base for base, this in zip(cpu["base"], cpu["this"], strict=True)]
    pg_ratios = [this / base for base, this in zip(postgres["base"], postgres["this"], strict=True)]
    print(
        json.dumps(
            {
                "benchmark": "paired_cpu",
                "base": args.base,
                "pairs": args.pairs,
                "server_cpu_ms_base": _range(cpu["base"]),
                "server_cpu_ms_this": _range(cpu["this"]),
                "server_cpu_ratio": _range(ratios),
                "postgres_cpu_ratio": _range(pg_ratios),
            }
        )
    )


if __name__ == "__main__":
    main()
