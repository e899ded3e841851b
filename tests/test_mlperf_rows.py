"""The MLPerf Training rows of benchmarks/recipe_runs.yaml: each row's throughput is its logged step (GBS x 8192 /
step / GPUs), its layout covers its GPUs, and the log reader of benchmarks/mlperf_train_check.py takes each logged
step once and leaves the first (warm-up) interval out."""

import pytest

import mlperf_train_check as check

ROWS = check.mlperf_rows()


def test_there_are_rows_of_both_benchmarks_and_rounds():
    ids = [r["id"] for r in ROWS]
    assert any("llama31-8b" in i for i in ids) and any("llama31-405b" in i for i in ids)
    assert any(i.startswith("mlperf5.0-") for i in ids) and any(i.startswith("mlperf5.1-") for i in ids)


@pytest.mark.parametrize("run", ROWS, ids=[r["id"] for r in ROWS])
def test_row_is_consistent(run):
    p, n, me = run["parallel"], run["hardware"]["num_gpus"], run["measured"]
    assert p["tp"] * p["pp"] * p["cp"] * p["dp"] == n
    assert p["global_batch_size"] == p["micro_batch_size"] * p["dp"] * p["grad_accum_steps"]
    tok = p["global_batch_size"] * check.SEQ / me["iteration_time_s"] / n
    assert tok == pytest.approx(me["tokens_per_sec_per_gpu"], rel=2e-4)
    assert run["source"]["commit"] and run["source"]["path"].endswith(".txt") and run["source"]["config"].endswith(".sh")


def _line(step, value, prefix=""):
    return (prefix + ':::MLLOG {"namespace": "", "event_type": "POINT_IN_TIME", "key": "tracked_stats", '
            f'"value": {{"train_step_time": {value}, "reduced_train_loss": 7.0}}, "metadata": {{"step": {step}}}}}')


def test_log_reader_dedups_and_skips_warmup():
    text = "\n".join([_line(31.0, 0.9), _line(31.0, 0.9), "noise", _line(63.0, 0.2, "  0: "), _line(95.0, 0.3),
                      _line(127.0, 0.25)])
    assert check.logged_step_times(text) == [0.9, 0.2, 0.3, 0.25]
    assert check.steady_median(check.logged_step_times(text)) == 0.25
    with pytest.raises(ValueError):
        check.steady_median([0.5])
