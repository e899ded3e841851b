"""The MLPerf Training rows of benchmarks/recipe_runs.yaml: each row's throughput is its logged step (GBS x sequence /
step / GPUs), its layout covers its GPUs, and the log reader of benchmarks/mlperf_train_check.py takes each logged
step once and leaves the first (warm-up) interval out, and times the GPT-3 logs' blocks where they carry no step
timing."""

import pytest

import mlperf_train_check as check

ROWS = check.mlperf_rows()


def test_there_are_rows_of_both_benchmarks_and_rounds():
    ids = [r["id"] for r in ROWS]
    assert any("llama31-8b" in i for i in ids) and any("llama31-405b" in i for i in ids)
    assert any(i.startswith("mlperf5.0-") for i in ids) and any(i.startswith("mlperf5.1-") for i in ids)
    assert any("gpt3-175b" in i for i in ids)


@pytest.mark.parametrize("run", ROWS, ids=[r["id"] for r in ROWS])
def test_row_is_consistent(run):
    p, n, me = run["parallel"], run["hardware"]["num_gpus"], run["measured"]
    assert p["tp"] * p["pp"] * p["cp"] * p["dp"] == n
    assert p["global_batch_size"] == p["micro_batch_size"] * p["dp"] * p["grad_accum_steps"]
    tok = p["global_batch_size"] * run["model"]["seq_length"] / me["iteration_time_s"] / n
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


def _rec(key, time_ms, value=None, **meta):
    return (':::MLLOG {"namespace": "", "time_ms": %d, "event_type": "INTERVAL_END", "key": "%s", "value": %s, '
            '"metadata": %s}' % (time_ms, key, "null" if value is None else value, str(meta).replace("'", '"')))


def test_gpt3_step_timing_key_is_read():
    text = "\n".join(_rec("tracked_stats", 0, '{"train_step_timing in s": %s}' % v, step=s)
                     for s, v in ((4194304, 9.4), (8388608, 9.5), (12582912, 9.6)))
    assert check.step_times(text, 2048, 2048) == ([9.4, 9.5, 9.6], "steps")


def test_blocks_give_the_step_where_no_step_is_logged():
    # two blocks of 11 steps of GBS 4 x seq 8 tokens each: 22 s and 11 s of training, evaluation in between not counted
    tokens = 11 * 4 * 8
    text = "\n".join([_rec("global_batch_size", 0, 4),
                      _rec("block_start", 1000, first_epoch_num=0, epoch_count=tokens),
                      _rec("block_stop", 23000, first_epoch_num=0),
                      _rec("block_start", 30000, first_epoch_num=tokens, epoch_count=tokens),
                      _rec("block_stop", 41000, first_epoch_num=tokens)])
    assert check.logged_value(text, "global_batch_size") == 4
    assert check.step_times(text, 4, 8) == ([2.0, 1.0], "blocks")


def test_gpt3_pairs_name_rows_of_the_same_plan():
    import mlperf_gpt3_pairs as pairs

    by_id = {r["id"]: r for r in ROWS}
    for _, a, b in pairs.PAIRS:
        pa, pb = by_id[a]["parallel"], by_id[b]["parallel"]
        assert (pa["tp"], pa["pp"]) == (pb["tp"], pb["pp"])
        assert by_id[a]["model"] == by_id[b]["model"]
