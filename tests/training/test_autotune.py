"""--precision=auto: the faster precision wins, by measurement, and the decision is cached per machine."""

from __future__ import annotations

import json

import pytest

from mnist_keras.training import autotune
from mnist_keras.training import precision as precision_lib


def figures(f32: float, bf16: float) -> dict:
    return {"float32": {"cpu": f32, "wall": f32 / 2}, "mixed_bfloat16": {"cpu": bf16, "wall": bf16 / 2}}


class Measure:
    """Stands in for the measurement: given figures, and how often it was asked."""

    def __init__(self, result: dict):
        self.result, self.calls = result, 0

    def __call__(self, names):
        assert names == ["float32", "mixed_bfloat16"]
        self.calls += 1
        return self.result


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(autotune.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("f32, bf16, expected", [(0.0021, 0.0029, "float32"), (0.0120, 0.0071, "mixed_bfloat16")])
def test_the_faster_precision_wins_and_says_by_how_much(cache, f32, bf16, expected):
    details: dict = {}
    measure = Measure(figures(f32, bf16))
    precision, why = precision_lib.choose_precision("auto", False, measure=measure, details=details)
    assert precision == expected and measure.calls == 1
    loser = "mixed_bfloat16" if expected == "float32" else "float32"
    assert why.startswith(f"measured {min(f32, bf16) * 1e3:.1f} ms a step, against "
                          f"{max(f32, bf16) * 1e3:.1f} ms in {loser}, CPU time; measured now")
    assert details["figures"] == figures(f32, bf16) and details["clock"] == "cpu"


def test_a_cached_decision_is_not_measured_again(cache):
    first = Measure(figures(0.010, 0.007))
    assert autotune.auto_precision(False, measure=first)[0] == "mixed_bfloat16"
    again = Measure(figures(0.001, 0.009))  # would choose float32, if it were asked
    precision, why = autotune.auto_precision(False, measure=again)
    assert (precision, again.calls) == ("mixed_bfloat16", 0)
    assert "measured 7.0 ms a step, against 10.0 ms in float32, CPU time; cached 20" in why
    assert len(list(cache.glob("precision-*.json"))) == 1


@pytest.mark.parametrize("change", ["tensorflow", "cpu", "batch_size", "jit", "replicas"])
def test_another_machine_or_setting_measures_anew(cache, monkeypatch, change):
    autotune.auto_precision(False, measure=Measure(figures(0.010, 0.007)))
    kwargs = {}
    if change == "tensorflow":
        import tensorflow as tf

        monkeypatch.setattr(tf, "__version__", tf.__version__ + ".other")
    elif change == "cpu":
        real = autotune.cpu_description()
        monkeypatch.setattr(autotune, "cpu_description", lambda: {**real, "cpu": "Intel(R) Xeon(R) Platinum"})
    else:
        kwargs = {"measuring": autotune.Measuring(**{change: {"batch_size": 128, "jit": True, "replicas": 2}[change]})}
    other = Measure(figures(0.005, 0.009))
    assert autotune.auto_precision(False, measure=other, **kwargs)[0] == "float32"
    assert other.calls == 1
    assert len(list(cache.glob("precision-*.json"))) == 2


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"context": {}, "precision": "float32"}',
                                    b"\xff\xfe\x00binary"])
def test_a_damaged_cache_file_is_measured_again_and_replaced(cache, damage):
    autotune.auto_precision(False, measure=Measure(figures(0.010, 0.007)))
    (path,) = cache.glob("precision-*.json")
    path.write_bytes(damage)
    measure = Measure(figures(0.004, 0.007))
    assert autotune.auto_precision(False, measure=measure)[0] == "float32"
    assert measure.calls == 1
    assert json.loads(path.read_text())["precision"] == "float32"


def test_a_tampered_figure_in_the_cache_is_not_trusted(cache):
    autotune.auto_precision(False, measure=Measure(figures(0.010, 0.007)))
    (path,) = cache.glob("precision-*.json")
    entry = json.loads(path.read_text())
    entry["figures"]["float32"]["cpu"] = "fast"
    path.write_text(json.dumps(entry))
    measure = Measure(figures(0.010, 0.007))
    autotune.auto_precision(False, measure=measure)
    assert measure.calls == 1


def test_an_unwritable_cache_folder_measures_and_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(autotune.CACHE_ENV, str(blocker / "cache"))
    for _ in range(2):  # nothing cached, so measured each time, and no crash
        measure = Measure(figures(0.010, 0.007))
        precision, why = autotune.auto_precision(False, measure=measure)
        assert (precision, measure.calls) == ("mixed_bfloat16", 1)
        assert f"not cached: {blocker / 'cache'}" in why


def test_cache_folder_defaults_to_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(autotune.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert autotune.cache_dir() == tmp_path / "mnist_keras"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert autotune.cache_dir() == tmp_path / "home" / ".cache" / "mnist_keras"


def test_interleaved_takes_medians_per_step_so_a_stall_does_not_decide():
    """A fake clock: B is slower in most rounds, A stalls once for a long time; B still loses."""
    ticks = iter([0, 2, 2, 5, 5, 7, 7, 10, 10, 110, 110, 113, 113, 115, 115, 118, 118, 120, 120, 123])
    now = [0.0]

    def clock():
        now[0] = float(next(ticks))
        return now[0]

    calls = []
    result = autotune.interleaved({"A": lambda: calls.append("A"), "B": lambda: calls.append("B")},
                                  rounds=5, per_call=2, clocks=(clock, lambda: now[0]))
    assert calls == ["A", "B"] * 5  # interleaved
    assert result["A"]["cpu"] == 1.0 and result["B"]["cpu"] == 1.5  # medians of 2, 2, 100, 2, 2 / 2 and 3s / 2
    assert autotune.decide(result, "cpu") == "A"


def test_real_measurement_on_a_tiny_setting_picks_the_faster_it_measured(cache, mnist):
    details: dict = {}
    measuring = autotune.Measuring(batch_size=8, images=mnist.x_train[:256], labels=mnist.y_train[:256])
    precision, why = autotune.auto_precision(False, measuring, details=details)
    measured = details["figures"]
    assert set(measured) == {"float32", "mixed_bfloat16"}
    assert all(0 < f["cpu"] < 1 and 0 < f["wall"] < 1 for f in measured.values())
    assert precision == min(measured, key=lambda name: measured[name]["cpu"])
    assert why.startswith(f"measured {measured[precision]['cpu'] * 1e3:.1f} ms a step")
    (path,) = cache.glob("precision-*.json")
    assert json.loads(path.read_text())["context"]["batch_size"] == 8


def test_training_prints_and_records_the_measured_choice(trained):
    record = trained.record
    measured = record["precision_measured"]
    assert record["precision"] == min(measured["figures"], key=lambda name: measured["figures"][name]["cpu"])
    assert set(measured["figures"]) == {"float32", "mixed_bfloat16"}
