"""How a lesson kernel shows errors (pedagogy.explain's hook) in a real IPython shell."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from labsupport.pedagogy.explain import ENV_FULL_TRACEBACKS, install_exception_hook


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real IPython shell with the lesson hook, short tracebacks unless a test asks."""
    monkeypatch.delenv(ENV_FULL_TRACEBACKS, raising=False)
    shell = InteractiveShell.instance()
    shell.colors = "nocolor"
    install_exception_hook(shell)
    yield shell
    shell.set_custom_exc((), None)


def _run(shell: Any, capsys: pytest.CaptureFixture[str], code: str) -> str:
    result = shell.run_cell(code)
    assert result.error_in_exec is not None
    out = capsys.readouterr()
    return out.out + out.err


LAB_ERROR = "from labsupport.client.users import split_pin\nsplit_pin('admin-without-colon')\n"


def test_a_lab_error_shows_the_learners_line_and_the_fix_not_the_lab(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = _run(shell, capsys, LAB_ERROR)
    assert "PinFormatError" in shown and "→ " in shown
    assert "split_pin('admin-without-colon')" in shown  # the learner's own line
    assert "labsupport/client/users.py" not in shown and "interactiveshell.py" not in shown


def test_full_tracebacks_on_request(
    shell: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_FULL_TRACEBACKS, "1")
    assert "labsupport/client/users.py" in _run(shell, capsys, LAB_ERROR)


def test_a_lab_error_hides_the_internal_error_it_came_from(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = (
        "from labsupport.errors import LabError\n"
        "try:\n    {}['missing']\n"
        "except KeyError as exc:\n    raise LabError('No such thing.', 'Make it first.') from exc\n"
    )
    shown = _run(shell, capsys, code)
    assert "No such thing." in shown and "Make it first." in shown
    assert "direct cause" not in shown and "KeyError: 'missing'" not in shown
    assert shell.user_ns.get("exc") is None  # the learner's objects are untouched


def test_pkcs11_errors_keep_their_explanation_and_wrong_answers_their_one_line(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = (
        "from labsupport.pedagogy import start_lesson\n"
        "token = start_lesson('00').create_token('hook-demo', user_pin='the-right-pin')\n"
        "token.open(user_pin='not-the-pin')\n"
    )
    shown = _run(shell, capsys, code)
    assert "PinIncorrect" in shown and "\n💡" in shown
    assert "_pkcs11.pyx" not in shown and "tokens.py" not in shown
    shown = _run(
        shell,
        capsys,
        "from labsupport.pedagogy.grading import WrongAnswer\n"
        "raise WrongAnswer('Not quite.', 'Look at step 2.')\n",
    )
    assert shown.strip().splitlines() == ["❌ Not quite.", "Look at step 2."]
