import csv
import io
import math

from aesweep.summary import JobRecord, job_title, summary_rows, swept_keys, to_csv, to_markdown


def _job(arch, lr, acc, status="FINISHED", failure=""):
    return JobRecord(
        run_name=f"{arch}-{lr}",
        status=status,
        params={"arch.name": arch, "lr": lr, "seed": "0"},
        metrics={"test/acc": acc, "cluster/acc": acc, "train/loss": 0.5, "time/train_s": 90.0},
        overrides=[f"arch={arch}", f"lr={lr}", "train.epochs=2"],
        failure=failure,
    )


JOBS = [_job("ffn", "0.01", 0.4), _job("cnn", "0.005", 0.6), _job("cnn", "0.01", 0.5)]


def test_only_varying_override_keys_are_columns_plus_arch():
    assert swept_keys(JOBS) == ["arch", "lr"]
    assert job_title(JOBS[1], ["arch", "lr"]) == "cnn lr=0.005"


def test_rows_are_best_first_with_the_reference_last():
    columns, rows = summary_rows(JOBS, {"test/acc": 0.53, "cluster/acc": 0.52})
    assert columns[:3] == ["arch", "lr", "status"]
    assert [r["test/acc"] for r in rows] == [0.6, 0.5, 0.4, 0.53]
    assert rows[-1]["arch"] == "pixels (reference)" and rows[-1]["status"] == "reference"
    assert rows[0]["minutes"] == 1.5


def test_failed_jobs_show_their_reason_and_sort_last():
    jobs = [*JOBS, _job("ffn", "10", math.nan, status="FAILED", failure="loss diverged")]
    _, rows = summary_rows(jobs, None)
    assert rows[-1]["status"] == "FAILED: loss diverged"


def test_markdown_and_csv_render_the_same_rows():
    columns, rows = summary_rows(JOBS, {"test/acc": 0.53})
    markdown = to_markdown(columns, rows).splitlines()
    assert markdown[0].startswith("| arch | lr | status | epochs | train loss | val loss |")
    assert markdown[2].startswith("| cnn | 0.005 | FINISHED |")
    assert "| 0.600 |" in markdown[2]
    assert len(markdown) == 2 + 4
    parsed = list(csv.DictReader(io.StringIO(to_csv(columns, rows))))
    assert [row["test/acc"] for row in parsed] == ["0.6", "0.5", "0.4", "0.53"]
    assert parsed[-1]["val/loss"] == ""  # not applicable, not "nan"
