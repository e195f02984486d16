"""``ivr forecast`` on the shipped example log: beats seasonal naive, says so, bounds hold."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from simulation.calllog import read_calls, write_calls
from simulation.cli import add_commands
from simulation.forecast import ForecastOptions, backtest, forecast_calls, read_holidays
from simulation.synthetic import SyntheticCentre, generate_calls, holiday_dates


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The README's example: 56 days from scripts/make_call_log.py defaults."""
    d = tmp_path_factory.mktemp("fc")
    centre = SyntheticCentre(days=56)
    write_calls(d / "calls.csv", generate_calls(centre), utc_offset_hours=1)
    (d / "holidays.txt").write_text("".join(f"{x}\n" for x in holiday_dates(centre)))
    return d


@pytest.mark.slow
def test_backtest_beats_seasonal_naive_and_says_so(example, tmp_path, capsys):
    out = tmp_path / "fc"
    argv = ["forecast", str(example / "calls.csv"), "--horizon", "14d", "--out", str(out)]
    assert run([*argv, "--backtest", "--holidays", str(example / "holidays.txt")]) == 0
    printed = capsys.readouterr().out
    bt = json.loads((out / "backtest.json").read_text())
    assert bt["beats_seasonal_naive"] is True
    assert bt["overall"]["wape"] < bt["overall"]["naive_wape"]
    assert "the model beats seasonal naive" in printed and "seasonal naive" in printed
    assert abs(bt["overall"]["bias"]) < 0.1
    rows = (out / "forecast.csv").read_text().splitlines()
    assert len(rows) == 1 + 14 * 48
    assert rows[0].startswith("interval_start,calls,calls_low,calls_high,aht_seconds")


@pytest.mark.slow
def test_held_out_days_fall_inside_the_daily_intervals(example):
    log = read_calls(example / "calls.csv")
    hol = read_holidays(str(example / "holidays.txt"))
    opts = ForecastOptions(horizon_days=14, holidays=hol)
    day = np.floor(log.arrival / 86400).astype(int)
    cut = int(day.min()) + 42
    fc = forecast_calls(log, opts, until_day=cut)
    actual = np.array([int((day == cut + k).sum()) for k in range(14)])
    inside = (fc.daily_low <= actual) & (actual <= fc.daily_high)
    assert inside.mean() >= 0.8, (fc.daily.round(), actual)
    holiday = [k for k in range(14) if cut + k in hol]
    assert holiday and fc.daily[holiday[0]] < 0.3 * np.max(fc.daily)  # the holiday is scaled
    bt = backtest(log, opts)
    assert bt["holdout"]["days"] == 14 and bt["by_interval"]


def test_forecast_flags_are_range_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(["forecast", "x.csv", "--horizon", "0d", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "between 1 and 366" in capsys.readouterr().err
    bad = tmp_path / "h.txt"
    bad.write_text("2026-13-01\n")
    assert run(["forecast", "x.csv", "--holidays", str(bad), "--out", str(tmp_path)]) == 2
    assert "h.txt: line 1: '2026-13-01' is not a YYYY-MM-DD date" in capsys.readouterr().err
