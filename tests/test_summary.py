import csv
import io
import math

import pytest

from aesweep.summary import JobRecord, job_title, summary_rows, swept_keys, to_csv, to_markdown


def _job(arch, lr, acc, status="FINISHED", failure="", seed="0"):
    return JobRecord(
        run_name=f"{arch}-{lr}",
        status=status,
        params={"arch.name": arch, "lr": lr, "seed": seed},
        metrics={"test/acc": acc, "cluster/acc": acc, "train/loss": 0.5, "time/train_s": 90.0},
        overrides=[f"arch={arch}", f"lr={lr}", "train.epochs=2", f"seed={seed}"],
        failure=failure,
        selection=f"digits-of-seed-{seed}",
    )


JOBS = [_job("ffn", "0.01", 0.4), _job("cnn", "0.005", 0.6), _job("cnn", "0.01", 0.5)]


def test_only_varying_override_keys_are_columns_plus_arch():
    assert swept_keys(JOBS) == ["arch", "lr"]
    assert job_title(JOBS[1], ["arch", "lr"]) == "cnn lr=0.005"


def test_rows_are_best_first_with_the_reference_last():
    columns, rows = summary_rows(
        JOBS, {"digits-of-seed-0": {"test/acc": 0.53, "cluster/acc": 0.52}}
    )
    assert columns[:3] == ["arch", "lr", "status"]
    assert [r["test/acc"] for r in rows] == [0.6, 0.5, 0.4, 0.53]
    assert rows[-1]["arch"] == "pixels (reference)" and rows[-1]["status"] == "reference"
    assert rows[0]["minutes"] == 1.5


def test_failed_jobs_show_their_reason_and_sort_last():
    jobs = [*JOBS, _job("ffn", "10", math.nan, status="FAILED", failure="loss diverged")]
    _, rows = summary_rows(jobs, None)
    assert rows[-1]["status"] == "FAILED: loss diverged"


def test_markdown_and_csv_render_the_same_rows():
    columns, rows = summary_rows(JOBS, {"digits-of-seed-0": {"test/acc": 0.53}})
    markdown = to_markdown(columns, rows).splitlines()
    assert markdown[0].startswith("| arch | lr | status | epochs | train loss | val loss |")
    assert markdown[2].startswith("| cnn | 0.005 | FINISHED |")
    assert "| 0.600 |" in markdown[2]
    assert len(markdown) == 2 + 4
    parsed = list(csv.DictReader(io.StringIO(to_csv(columns, rows))))
    assert [row["test/acc"] for row in parsed] == ["0.6", "0.5", "0.4", "0.53"]
    assert parsed[-1]["val/loss"] == ""  # not applicable, not "nan"


def test_jobs_on_other_digits_get_their_own_reference_beside_them():
    jobs = [
        _job("ffn", "0.01", 0.4, seed="0"),
        _job("cnn", "0.01", 0.5, seed="0"),
        _job("ffn", "0.01", 0.45, seed="1"),
        _job("cnn", "0.01", 0.7, seed="1"),
    ]
    references = {"digits-of-seed-0": {"test/acc": 0.48}, "digits-of-seed-1": {"test/acc": 0.51}}
    columns, rows = summary_rows(jobs, references)
    assert columns[:3] == ["arch", "seed", "status"]  # lr is the same everywhere
    assert [(r["arch"], r["seed"], r["test/acc"]) for r in rows[:6]] == [
        ("cnn", "1", 0.7),  # the group with the best job first
        ("ffn", "1", 0.45),
        ("pixels (reference)", "1", 0.51),
        ("cnn", "0", 0.5),
        ("ffn", "0", 0.4),
        ("pixels (reference)", "0", 0.48),
    ]


def test_csv_rounds_minutes_and_leaves_na_blank():
    job = _job("pixels", "", 0.5)
    job.metrics["time/train_s"] = 4.2e-05
    columns, rows = summary_rows([job], None)
    [row] = csv.DictReader(io.StringIO(to_csv(columns, rows)))
    assert row["minutes"] == "0.0" and row["val/loss"] == ""


def test_seeds_as_replicates_add_one_row_per_config_with_mean_and_spread():
    jobs = [
        _job("ffn", "0.01", acc, seed=seed) for seed, acc in [("0", 0.40), ("1", 0.50), ("2", 0.60)]
    ] + [_job("cnn", "0.01", acc, seed=seed) for seed, acc in [("0", 0.7), ("1", 0.7), ("2", 0.7)]]
    references = {f"digits-of-seed-{s}": {"test/acc": 0.48 + 0.01 * int(s)} for s in "012"}
    columns, rows = summary_rows(jobs, references)
    means = [row for row in rows if str(row["seed"]).startswith("mean")]
    assert [(r["arch"], r["status"]) for r in means] == [
        ("cnn", "mean ± sd"),
        ("ffn", "mean ± sd"),
        ("pixels (reference)", "reference"),
    ]
    ffn = means[1]
    assert ffn["seed"] == "mean of 3"
    assert ffn["test/acc"] == pytest.approx(0.5) and ffn["test/acc"].sd == pytest.approx(0.1)
    assert means[2]["test/acc"] == pytest.approx(0.49)
    markdown = to_markdown(columns, rows)
    assert "| ffn | mean of 3 | mean ± sd |" in markdown and "0.500 ± 0.100" in markdown
    parsed = list(csv.DictReader(io.StringIO(to_csv(columns, rows))))
    [ffn_csv] = [r for r in parsed if r["arch"] == "ffn" and r["seed"] == "mean of 3"]
    assert float(ffn_csv["test/acc"]) == pytest.approx(0.5)
    assert float(ffn_csv["test/acc sd"]) == pytest.approx(0.1)
    assert parsed[0]["test/acc sd"] == ""  # a single job has no spread
