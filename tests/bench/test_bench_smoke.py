"""The API benchmark's smoke run (`python -m bench.api --quick`): it completes and reports every
figure. Its numbers are not judged here (they depend on the machine); the full run is the
README's command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import POSTGRES_ADMIN_URL, require

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [
    "baseline (psycopg + orjson)",
    "GET /api/v1/tasks?limit=50",
    "GET /api/v1/settings",
    "POST /api/v1/tasks",
]


@pytest.mark.slow
def test_quick_benchmark_run_reports_every_figure() -> None:
    require("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    paths = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    run = subprocess.run(
        [sys.executable, "-m", "bench.api", "--quick", "--database", POSTGRES_ADMIN_URL],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    figures = json.loads(lines[-1])

    rows = {row["target"]: row for row in figures["throughput"]}
    assert list(rows) == TARGETS
    for row in rows.values():
        assert row["throughput"] > 0
        assert row["p50_ms"] > 0
        assert row["p99_ms"] >= row["p50_ms"]
        assert "throughput_vs_baseline" in row
        assert "p99_over_p50" in row
        # every request of the run was answered with success
        assert set(row["statuses"]) <= {"200", "201"}, row
        assert not row["errors"], row
    assert figures["baseline_page_equals_api_page"] is True
    assert [row["rows"] for row in figures["scale"]] == ["tasks", "tasks", "events"]
    for row in figures["scale"]:
        assert row["small_p50_ms"] > 0
        assert row["large_p50_ms"] > 0
        assert row["ratio"] > 0

    report = "\n".join(lines[:-1])
    for target in TARGETS:
        assert target in report
    # a verdict for the throughput target, the tail of each route and each scale check
    verdicts = [line for line in lines if line.lstrip().startswith(("PASS", "FAIL"))]
    assert len(verdicts) == 1 + 3 + 3, report
    assert lines[-2].startswith("all targets: ")
