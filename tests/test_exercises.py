"""The notebooks' automatic checks accept right answers and explain wrong ones."""

import torch

from fedlab_core.exercises import check_choice, check_fedavg, check_number


def test_check_fedavg_accepts_the_weighted_mean(capsys):
    assert check_fedavg(lambda d, w: (w / w.sum()) @ d)
    assert "✅" in capsys.readouterr().out


def test_check_fedavg_rejects_the_unweighted_mean_with_a_hint(capsys):
    assert not check_fedavg(lambda d, w: d.mean(0))
    assert "weight by the number of patients" in capsys.readouterr().out


def test_check_fedavg_reports_errors_and_shapes(capsys):
    assert not check_fedavg(lambda d, w: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert not check_fedavg(lambda d, w: torch.zeros(3))
    assert "Shape" in capsys.readouterr().out


def test_check_number_and_choice(capsys):
    assert not check_number(None, 0.1, tolerance=0.01, what="x")
    assert check_number(0.105, 0.1, tolerance=0.01, what="x")
    assert not check_number(0.2, 0.1, tolerance=0.01, what="x")
    assert check_choice(" switzerland ", "Switzerland", what="the site")
    assert not check_choice("Hungary", "Switzerland", what="the site")
    assert not check_choice("", "Switzerland", what="the site")


def test_a_verdict_is_a_bool_that_shows_nothing_in_a_notebook(capsys):
    from fedlab_core.exercises import Verdict

    right, wrong = check_number(0.1, 0.1, tolerance=0.01, what="x"), check_number(None, 0.1, tolerance=0.01, what="x")
    assert isinstance(right, Verdict) and bool(right) and not wrong
    assert repr(right) == "True" and repr(wrong) == "False"
    assert right._ipython_display_() is None   # IPython calls this instead of printing a repr


def test_an_exact_answer_is_asked_for_in_words(capsys):
    assert not check_number(3, 4, tolerance=0, what="the count")
    assert "look again (it must be exact)" in capsys.readouterr().out
