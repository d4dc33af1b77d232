"""The example pipelines in examples/flows/std_*.yaml, run through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from std_http_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[3]
FLOWS = ROOT / "examples" / "flows"
ROUTILUX = str(Path(sys.executable).parent / "routilux")


def run_flow(
    name: str, cwd: Path, *params: str, json_output: bool = False
) -> subprocess.CompletedProcess[str]:
    args = [ROUTILUX, "run", str(FLOWS / name), "--param", f"data_dir={FLOWS}"]
    if json_output:
        args.append("--json")
    for param in params:
        args += ["--param", param]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_orders_csv_validate_map_filter_batch_write(tmp_path: Path) -> None:
    done = run_flow("std_orders.yaml", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    written = read_jsonl(tmp_path / "std_output" / "std_orders.jsonl")
    # row 4 (qty "x") is invalid, row 2 (qty 0) is filtered out
    assert written == [
        {"id": 1, "customer": "ADA", "qty": 3, "price": "2.50"},
        {"id": 3, "customer": "CY", "qty": 12, "price": "1.25"},
        {"id": 5, "customer": "EVE", "qty": 7, "price": "3.00"},
        {"id": 6, "customer": "FAY", "qty": 1, "price": "100.00"},
    ]
    assert not list((tmp_path / "std_output").glob(".*.tmp"))


def test_word_count_over_three_files_joins_totals_and_summary(tmp_path: Path) -> None:
    done = run_flow("std_word_count.yaml", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = read_jsonl(tmp_path / "std_output" / "std_word_count.jsonl")
    assert line["complete"] is True and line["missing"] == []
    text = " ".join(p.read_text() for p in sorted((FLOWS / "std_words").glob("*.txt")))
    expected: dict[str, int] = {}
    for word in text.lower().split():
        expected[word] = expected.get(word, 0) + 1
    assert line["values"]["counts"]["value"] == expected
    summary = line["values"]["summary"]
    assert [Path(f).name for f in summary["files"]] == ["a.txt", "b.txt", "c.txt"]
    assert summary["records"] == 7  # 8 lines, one blank skipped


def test_http_requests_retry_until_the_local_server_answers(
    tmp_path: Path, http_server: ScriptedServer
) -> None:
    urls = tmp_path / "urls.jsonl"
    urls.write_text(
        "".join(
            json.dumps({"id": n, "url": f"{http_server.base}/items/{n}"}) + "\n" for n in (1, 2, 3)
        )
    )
    http_server.failures["/items/2"] = 2  # two 503s, then success: RETRY must carry it
    done = run_flow("std_http.yaml", tmp_path, f"urls={urls}")
    assert done.returncode == 0, done.stdout + done.stderr
    written = read_jsonl(tmp_path / "std_output" / "std_http.jsonl")
    assert sorted(written, key=lambda r: r["id"]) == [
        {"id": n, "status": 200, "body": {"item": n}} for n in (1, 2, 3)
    ]
    assert http_server.requests.count("/items/2") == 3


def test_http_flow_fails_clearly_when_retries_run_out(
    tmp_path: Path, http_server: ScriptedServer
) -> None:
    urls = tmp_path / "urls.jsonl"
    urls.write_text(json.dumps({"id": 9, "url": f"{http_server.base}/missing/9"}) + "\n")
    done = run_flow("std_http.yaml", tmp_path, f"urls={urls}", json_output=True)
    assert done.returncode == 1
    (job,) = json.loads(done.stdout)
    assert job["error_routine_id"] == "fetch"
    assert job["error"] == (
        f"HttpStatusError: routine 'fetch' (std.http_request): GET {http_server.base}/missing/9 "
        'answered 404 Not Found: {"error": "no such thing"}'
    )
    assert not (tmp_path / "std_output" / "std_http.jsonl").exists()
    assert http_server.requests.count("/missing/9") == 4  # first try + 3 retries
