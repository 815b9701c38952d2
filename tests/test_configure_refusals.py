"""Option values the metric families refuse stop the run when options are parsed, with one line (issue 16.12)."""

from __future__ import annotations

import pytest

from talkbench_plugin.cli import main


@pytest.mark.parametrize(("option", "message"), [
    (("--talkbench-sync-detect-every", "0"), "argument --talkbench-sync-detect-every: '0': expected a whole number >= 1"),
    (("--talkbench-fid-sampling", "count=-3"), "argument --talkbench-fid-sampling: 'count=-3': use every, stride=K"),
])
def test_bad_family_option_is_a_usage_error(pytester: pytest.Pytester, option: tuple[str, str], message: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*option, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*error: {message}*"])
    assert "Traceback" not in result.stderr.str() and "passed" not in result.stdout.str()


@pytest.mark.parametrize("option", [("--sync-detect-every", "0"), ("--fid-sampling", "stride=0")])
def test_the_command_refuses_them_too(tmp_path, capsys, option: tuple[str, str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--cache", str(tmp_path), "evaluate", *option])
    assert exit_.value.code == 2
    assert f"argument {option[0]}: '{option[1]}'" in capsys.readouterr().err
