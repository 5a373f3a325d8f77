"""The command line on a terminal: tables, the progress bar, notes and lists fitted to its width.

The terminal's width is given to the functions (or stands in for the terminal's); the runs behind them are real.
"""
from __future__ import annotations

import io

import pytest

from initlab.engine.events import Progress
from initlab.engine.spec import Config
from initlab.engine.train import run_training
from initlab.tui.commands import common, presets, train
from initlab.tui.commands.common import fmt, table
from initlab.tui.commands.train import Bar, bar_text


def rows_of(text: str) -> list[str]:
    return text.splitlines()


def test_a_table_wider_than_the_terminal_goes_in_blocks_led_by_its_keys():
    rows = [{"k": i, **{f"c{j}": 1.5e-5 * (1 + i + j) for j in range(8)}} for i in range(3)]
    cols = ["k"] + [f"c{j}" for j in range(8)]
    whole = table(rows, cols, width=None)
    assert len(rows_of(whole)) == 5 and len(rows_of(whole)[0]) > 60
    fitted = table(rows, cols, width=40)
    blocks = fitted.split("\n\n")
    assert len(blocks) > 1 and all(len(ln) <= 40 for ln in rows_of(fitted))
    for b in blocks:        # each block: the key column, then its own columns, every row of the table
        lines = rows_of(b)
        assert lines[0].split()[0] == "k" and len(lines) == 5
        assert [ln.split()[0] for ln in lines[2:]] == ["0", "1", "2"]
    # every column once, in order
    assert [h for b in blocks for h in rows_of(b)[0].split()[1:]] == cols[1:]
    # the values are the table's own
    assert rows_of(blocks[0])[2].split()[1] == rows_of(whole)[2].split()[1]
    assert table(rows, cols, width=200) == whole


def test_a_sweep_table_repeats_its_varied_settings_in_every_block():
    rows = [{"depth": d, "init": "xavier_uniform", **{f"m{j}": 0.123456 for j in range(6)}} for d in (2, 3)]
    cols = ["depth", "init"] + [f"m{j}" for j in range(6)]
    blocks = table(rows, cols, keys=2, width=50).split("\n\n")
    assert len(blocks) > 1 and all(rows_of(b)[0].split()[:2] == ["depth", "init"] for b in blocks)


def progress(step=5000, total=21000, run=0, runs=1, loss=0.4829, rate=2556.0):
    return Progress("train", step=step, total_steps=total, epoch=118, epochs=300, loss=loss, steps_per_sec=rate,
                    run=run, runs=runs)


@pytest.mark.parametrize("width", [10, 20, 30, 40, 60, 80, 100, 200])
def test_the_bar_fits_the_terminal_leaving_room_for_an_echoed_ctrl_c(width):
    ev = progress(runs=10, run=2)
    text = bar_text(ev, width)
    assert len(text) <= width - 3
    # fields are whole or absent: no "run 3/1" of "run 3/10", no cut number
    words = text.replace("[", " [").split()
    fields = ["run", "3/10", "5000/21000", "epoch", "118/300", "loss", "0.4829", "2,556", "steps/s"]
    assert all(w in fields or set(w) <= set("[#.]") for w in words), text
    if width >= 40:
        assert text.startswith("run 3/10 ") and "5000/21000" in text and "loss 0.4829" in text
    if width >= 100:
        assert "epoch 118/300" in text and "2,556 steps/s" in text and "[#" in text
    # the bar keeps its length while the loss's text changes
    bar = lambda t: t[t.find("["):t.find("]") + 1]
    assert bar(bar_text(progress(runs=10, run=2, loss=1.5e-12), width)) == bar(text)


def test_a_training_of_several_seeds_draws_a_bar_line_per_run(capsys):
    bar = Bar()
    cfg = Config(depth=2, width=4, epochs=2, data="poly", n_rows=200, batch=20, device="cpu")
    res = run_training(cfg, emit=bar, seeds=(1, 2))
    bar.close()
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[-1] == "" and len(lines) == 3      # one line per run, each ended
    finals = [ln.split("\r")[-1] for ln in lines[:2]]
    steps = res["runs"][0]["total_steps"]
    assert finals[0].startswith("run 1/2 [") and finals[1].startswith("run 2/2 [")
    assert all(f"{steps}/{steps}" in f for f in finals)


def test_a_shorter_redraw_blanks_the_end_of_the_longer_line_before_it(capsys):
    bar = Bar()
    bar(progress(step=10, loss=4.113))
    bar._draw(progress(step=11, loss=16.0))
    err = capsys.readouterr().err
    first, second = err.split("\r")[1:]
    assert len(second) == len(first) and second.rstrip(" ") == bar_text(progress(step=11, loss=16.0), 80)
    bar.clear()
    assert capsys.readouterr().err == "\r" + " " * (len(second.rstrip(" ")) + 2) + "\r"


def test_a_bar_goes_on_on_a_fresh_line_when_the_terminal_narrows_under_it(capsys, monkeypatch):
    from initlab.tui.commands import train as train_cmd

    width = [120]
    monkeypatch.setattr(train_cmd, "terminal_width", lambda stream=None: width[0])
    bar = Bar()
    bar(progress(step=10, loss=4.113))
    wide = capsys.readouterr().err
    width[0] = 50           # narrowed: the wide line wrapped onto two rows
    bar._draw(progress(step=11, loss=4.0))
    err = capsys.readouterr().err
    assert len(wide) > 50 and err.startswith("\n\r")        # a fresh line, not a return into the wrapped one
    assert len(err.split("\r")[-1]) < 50                       # and the bar fits the new width
    bar._draw(progress(step=12, loss=3.9))                      # then redrawn in place again
    assert capsys.readouterr().err.startswith("\r")


def test_a_note_wraps_at_words_under_its_first_line(monkeypatch):
    monkeypatch.setattr(common, "terminal_width", lambda stream=None: 40)
    out = io.StringIO()
    note = "initlab: note: init xavier_uniform does not read std; init normal, sparse do"
    common.say(note, out)
    lines = out.getvalue().splitlines()
    assert len(lines) > 1 and all(len(ln) < 40 for ln in lines)
    assert all(ln.startswith("  ") for ln in lines[1:]) and " ".join(ln.strip() for ln in lines) == note
    monkeypatch.setattr(common, "terminal_width", lambda stream=None: None)
    out = io.StringIO()
    common.say(note, out)
    assert out.getvalue() == note + "\n"        # a file or a pipe gets the line whole


def test_the_presets_list_wraps_its_summaries_under_their_column(monkeypatch, capsys):
    monkeypatch.setattr(presets, "terminal_width", lambda stream=None: 80)
    assert presets.run(type("A", (), {"json": False})()) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(ln) < 80 for ln in lines)
    names = [n for n, _, _ in presets.rows()]
    lead = max(map(len, names)) + 9
    starts = [ln for ln in lines if ln.split(" ")[0] in names]
    assert len(starts) == len(names)
    body = [ln for ln in lines if ln and ln not in starts and not ln.startswith("run one")]
    assert body and all(ln.startswith(" " * lead) and ln[lead] != " " for ln in body if not ln.startswith("`"))


def test_the_final_table_says_which_state_it_shows(capsys):
    cfg = Config(depth=2, width=4, epochs=1, data="poly", n_rows=100, batch=10, device="cpu")
    train.print_run(run_training(cfg))
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "per-layer statistics after training (step 7, on the first training batch)"
    assert "units" in out.splitlines()[1]
    stopped = run_training(cfg.replace(lr=1e6, epochs=3))
    train.print_run(stopped)
    lines = capsys.readouterr().out.splitlines()
    assert stopped["stopped"] == "nonfinite"
    assert lines[0] == (f"per-layer statistics of the last sampled step (step {stopped['final']['step']}, the run "
                        "stopped on a non-finite value)")
    assert "units" not in lines[1]      # not counted at sampled steps: no column of dashes
    v = stopped["final"]["verdict"]      # under the table, as a probe's
    assert v["kind"] == "nonfinite" and any(ln.startswith("verdict: nonfinite") for ln in lines)


def test_a_trainings_verdict_and_its_drift_note_are_printed_under_its_table(capsys):
    from initlab.engine.presets import PRESETS

    res = run_training(PRESETS["sigmoid-deep-train"].config.replace(epochs=2, device="cpu"))
    train.print_run(res)
    lines = capsys.readouterr().out.splitlines()
    v = res["final"]["verdict"]
    at = next(i for i, ln in enumerate(lines) if ln.startswith("verdict: "))
    assert lines[at] == (f"verdict: {v['kind']}; first/last |dL/dW| ratio {fmt(v['first_last_grad_ratio'])}, "
                         f"first/last dL/dz RMS ratio {fmt(v['first_last_gradz_ratio'])}")
    # the first layer's dL/dz some 650x below the last's: stable, and the note says how near vanishing it is
    assert v["kind"] == "stable" and "short of the 1000x read as vanishing" in v["note"] and lines[at + 1] == v["note"]
    # a steep fall over a short net: its rate a layer says so (three steps from the last layer to the first)
    fell = v["first_last_gradz_ratio"]
    assert f"(about {(1 / fell) ** (1 / 3):.3g}x a layer)" in v["note"]


def test_a_terminal_of_no_size_is_taken_as_none(monkeypatch):
    import os

    class Tty(io.StringIO):
        def isatty(self):
            return True

        def fileno(self):
            return 1

    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    assert common.terminal_width(Tty()) is None        # 0 columns (docker exec -t) put every column in a block
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((100, 30)))
    assert common.terminal_width(Tty()) == 100


def test_a_user_models_table_keeps_its_module_and_kind_in_every_block(monkeypatch, capsys, tmp_path):
    from initlab.tui.cli import main

    path = tmp_path / "m.py"
    path.write_text("import torch\nfrom torch import nn\n\ndef make():\n"
                    "    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)), torch.randn(5, 4)\n")
    monkeypatch.setattr(common, "stdout_is_terminal", lambda: True)
    monkeypatch.setattr(common, "terminal_width", lambda stream=None: 60)
    assert main(["probe", "--model", f"{path}:make", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    blocks = out.split("\n\nverdict")[0].split("\n\n")
    assert len(blocks) > 1
    for b in blocks:
        head = b.splitlines()[0].split()
        assert head[:3] == ["#", "module", "kind"]
        assert [ln.split()[2] for ln in b.splitlines()[2:]] == ["Linear", "Tanh", "Linear"]
    assert all(len(ln) < 60 for ln in out.splitlines())


# -- the process's surroundings ------------------------------------------------------------------------------------

def script() -> str:
    import os
    import sys

    return os.path.join(os.path.dirname(sys.executable), "initlab")


def test_version_is_the_installed_one():
    import subprocess
    from importlib.metadata import version

    out = subprocess.run([script(), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == f"initlab {version('initlab')}\n"


def test_a_deleted_current_folder_is_said_in_one_line_before_torch_loads(tmp_path):
    import subprocess

    gone = tmp_path / "gone"
    gone.mkdir()
    out = subprocess.run(["sh", "-c", f"cd {gone} && rmdir {gone} && exec {script()} probe --depth 2 --width 4"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "initlab: error: the current folder no longer exists (deleted?): cd to another and run it " \
                         "again\n"


def test_the_app_without_a_terminal_says_so_rather_than_hang():
    import subprocess

    out = subprocess.run([script()], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("initlab: error: the app needs a terminal, and stdin, stdout and stderr are not "
                                 "one")


def test_the_app_refuses_a_redirected_stdout_or_a_dumb_terminal(monkeypatch):
    from initlab.tui.cli import setting_problem

    class Tty(io.StringIO):
        def isatty(self):
            return True

    for name in ("stdin", "stdout", "stderr"):
        monkeypatch.setattr(f"sys.{name}", Tty())
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert setting_problem(app=True) is None
    monkeypatch.setattr("sys.stdout", io.StringIO())        # its size comes from stdout: 80 x 24 when redirected
    assert setting_problem(app=True).startswith("the app needs a terminal, and stdout is not one")
    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.setenv("TERM", "dumb")
    assert setting_problem(app=True).startswith("the app draws on the terminal, and TERM=dumb says this one cannot")
    assert setting_problem(app=False) is None               # the commands run on any


def test_the_app_writes_utf8_whatever_pythons_stdio_encoding():
    from initlab.tui.app_main import utf8_output

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="backslashreplace")     # PYTHONIOENCODING=ascii
    utf8_output(stream)
    stream.write("│▆←")
    stream.flush()
    assert raw.getvalue() == "│▆←".encode("utf-8")


def test_closed_outputs_give_a_line_and_the_right_status():
    import subprocess

    out = subprocess.run(["sh", "-c", f"{script()} probe --depth 2 --width 4 --device cpu >&-"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr == "initlab: error: OSError: stdout is closed: nowhere to write the " \
                                                 "result (give --out, --csv or --report a file)\n"
    out = subprocess.run(["sh", "-c", f"{script()} probe --depth 0 2>&-"], capture_output=True, timeout=60)
    assert out.returncode == 2      # bad input, said by the status alone where there is no stderr


def test_no_bar_is_drawn_where_stdout_is_piped_though_stderr_is_a_terminal(monkeypatch, capsys, piped):
    import json
    import sys

    from initlab.tui.cli import main

    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["train", "--depth", "2", "--width", "4", "--epochs", "1", "--n-rows", "100", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["stopped"] == "finished", out[:300]        # stdout, not a terminal: JSON
    assert "\r[" not in err.getvalue() and "epoch 1/1" not in err.getvalue()     # a script reads it: no bar
