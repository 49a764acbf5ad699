"""The operator CLI run in the test's own process: the same argv, environment, stdout, stderr and exit
code as ``python -m deploy.cli <args>`` with that environment, without a new interpreter (~1.2 s a call,
most of it imports). ``tests/ops/test_cli.py`` checks the two agree on answers, refusals, usage errors
and the entry point's own exit codes, and keeps the real-process runs that prove the process boundary
(a pipe's table width, an unreachable database, a missing setting).

What a subprocess would start afresh is set up the same way for each call and put back after it: the
environment (exactly ``clean + env``, as a subprocess gets it), the rich console and click's help width
(made for a pipe, as a subprocess writing to a pipe makes them), and the logging configuration some verbs
change (root handlers and levels, structlog). The verb runs in a thread of its own, so its ``asyncio.run``
does not meet the test's running event loop; the caller waits for it, as it waited for the subprocess."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

#: the name ``python -m deploy.cli`` gives itself in usage lines and errors
PROG_NAME = "python -m deploy.cli"


def clean_environment() -> dict[str, str]:
    """The test process's environment without the settings a test passes itself (databases, WASHFIN_*)."""
    return {k: v for k, v in os.environ.items()
            if not k.endswith("_DATABASE_URL") and not k.startswith("WASHFIN_")}


def run_process(env: Mapping[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.cli *args`` as a separate process, with exactly ``env`` (plus the clean rest)."""
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], env={**clean_environment(), **env},
                          capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def _as_a_new_process(env: Mapping[str, str]) -> Iterator[None]:
    import structlog

    import deploy.cli as cli
    import shared.logging as shared_logging

    saved_env = dict(os.environ)
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    named = {name: logging.getLogger(name).level for name in ("aiokafka", "uvicorn.access")}
    saved_structlog = structlog.get_config()
    saved_configured = shared_logging._configured
    saved_console = cli.console
    saved_state = dict(cli._state)
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(io.StringIO()):  # not a terminal: the console a pipe gets
            cli.console = cli._console()
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for name, level in named.items():
            logging.getLogger(name).setLevel(level)
        structlog.configure(**saved_structlog)
        shared_logging._configured = saved_configured
        cli.console = saved_console
        cli._state.clear()
        cli._state.update(saved_state)


def _pipe_width(env: Mapping[str, str]) -> int:
    """The width click formats help to in a process whose stdout is a pipe: ``COLUMNS`` or 80 (no terminal
    to ask: shutil.get_terminal_size's fallback), at most 80, less 2 (click.formatting.HelpFormatter)."""
    try:
        columns = int(env.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    return max(min(columns if columns > 0 else 80, 80) - 2, 50)


def _runner(width: int) -> Any:
    from typer._click import formatting  # the click typer runs on (it carries its own copy)
    from typer.testing import CliRunner

    class PipeRunner(CliRunner):
        """CliRunner formats help to 80 columns (formatting.FORCED_WIDTH); a process on a pipe to
        ``width``."""

        @contextlib.contextmanager
        def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            with super().isolation(*args, **kwargs) as streams:
                forced = formatting.FORCED_WIDTH
                formatting.FORCED_WIDTH = width
                try:
                    yield streams
                finally:
                    formatting.FORCED_WIDTH = forced

    return PipeRunner()


def run_in_process(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m deploy.cli *args`` with ``env`` (plus the clean rest), in this process. An exception
    the CLI does not handle ends it as it ends the interpreter: exit code 1 and the traceback on stderr."""
    from deploy.cli import app

    full_env = {**clean_environment(), **env}
    done: dict[str, Any] = {}

    def invoke() -> None:
        try:
            with _as_a_new_process(full_env):
                result = _runner(_pipe_width(full_env)).invoke(app, list(args), prog_name=PROG_NAME,
                                                               catch_exceptions=True)
            stderr = result.stderr
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                stderr += "".join(traceback.format_exception(result.exception))
            done["result"] = subprocess.CompletedProcess([PROG_NAME, *args], result.exit_code, result.stdout,
                                                         stderr)
        except BaseException as e:  # noqa: BLE001 - the harness's own failure, raised in the caller
            done["error"] = e

    thread = threading.Thread(target=invoke, name="washfin-cli")
    thread.start()
    thread.join()
    if "error" in done:
        raise done["error"]
    result: subprocess.CompletedProcess[str] = done["result"]
    return result
