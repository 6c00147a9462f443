"""The local runner's console filter: quiet terminal, complete log file."""

from __future__ import annotations

import io
import sys

from pipelines.local_log import QuietFilter, quiet_steps

# Shaped like kfp 2.x SubprocessRunner output (the executor's lines are indented by 4).
STREAM = """\
15:08:14.484 - INFO - Executing task 'validate-op'
15:08:14.485 - INFO - Streamed logs:

    [KFP Executor 2026-11-25 15:08:14,500 INFO]: Looking for component `validate_op`
    [KFP Executor 2026-11-25 15:08:14,501 INFO]: Got executor_input:
    {
        "inputs": {
            "parameterValues": {"workdir": "/data"}
        }
    }
    [KFP Executor 2026-11-25 15:08:15,000 INFO]: Skipping registering function get_context
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    Epoch 1/2
    \x1b[1m1/1\x1b[0m \x1b[32m━━━━\x1b[0m \x1b[1m0s\x1b[0m 148ms/step
    [artflow] validate: done in 1.2 s
    [KFP Executor 2026-11-25 15:08:16,000 ERROR]: something broke
    Traceback (most recent call last):
      File "x.py", line 1, in <module>
    ValueError: bad



15:08:16.523 - INFO - Task 'validate-op' finished with status SUCCESS
15:08:16.524 - INFO - Task 'validate-op' outputs:
    summary: Metrics( name='summary',
                      uri='/data/pipeline/kfp_local/validate-op/summary',
                      metadata={'images': 520.0} )
--------------------------------------------------------------------------------
15:08:16.530 - INFO - Executing task 'sample-op'
"""


def _filtered(text: str, chunk: int) -> tuple[str, str]:
    console, log = io.StringIO(), io.StringIO()
    stream = QuietFilter(console, log)
    for i in range(0, len(text), chunk):  # lines arrive split across writes
        stream.write(text[i : i + chunk])
    return console.getvalue(), log.getvalue()


def test_console_keeps_what_a_user_reads_and_the_log_keeps_everything():
    for chunk in (7, 4096):
        console, log = _filtered(STREAM, chunk)
        assert log == STREAM
        for kept in (
            "Executing task 'validate-op'",
            "Epoch 1/2",
            "[artflow] validate: done",
            "ERROR]: something broke",
            "Traceback",
            "ValueError: bad",
            "finished with status SUCCESS",
            "-" * 80,
            "Executing task 'sample-op'",
        ):
            assert kept in console, kept
        for dropped in (
            "Streamed logs",
            "Looking for component",
            "executor_input",
            "parameterValues",
            "Skipping registering",
            "absl::InitializeLog",
            "outputs:",
            "uri=",
            "148ms/step",
        ):
            assert dropped not in console, dropped
        assert "\n\n\n" not in console  # runs of blank lines collapse


def test_quiet_steps_writes_the_log_and_verbose_prints_all(tmp_path, capsys):
    for verbose in (False, True):
        log = tmp_path / f"logs/{verbose}.log"
        with quiet_steps(log, verbose=verbose):
            sys.stdout.write(STREAM)
        printed = capsys.readouterr().out
        assert log.read_text() == STREAM
        assert ("parameterValues" in printed) is verbose
        assert "[artflow] validate: done" in printed
