"""Entry point of the ``qnetkit`` console script.

Click-style usage errors and our own bad-value errors are printed as one line on stderr with
exit status 2; tracebacks are reserved for bugs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from qnetkit import __version__
from qnetkit.cli.errors import CliUsageError
from qnetkit.cli.keyrate_cmd import app as keyrate_app
from qnetkit.cli.kms_cmd import app as kms_app
from qnetkit.cli.network_cmd import app as network_app
from qnetkit.cli.network_cmd import report as report_cmd
from qnetkit.cli.network_cmd import sweep as sweep_cmd
from qnetkit.cli.qkd_cmd import app as qkd_app
from qnetkit.errors import ParameterError

app = typer.Typer(
    name="qnetkit",
    help="qnetkit: quantum networks from photons to delivered keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keyrate_app, name="keyrate")
app.add_typer(qkd_app, name="qkd")
app.add_typer(kms_app, name="kms")
app.add_typer(network_app, name="network")
app.command("report")(report_cmd)
app.command("sweep")(sweep_cmd)


def _version_callback(value: bool) -> None:
    if value:
        print(f"qnetkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """qnetkit: quantum networks from photons to delivered keys."""


def _register_demo() -> None:
    from qnetkit.cli.demo_cmd import demo

    app.command("demo")(demo)


_register_demo()


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"qnetkit: error: {message}\n")
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; exit 2 with a one-line message on any user mistake."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="qnetkit",
            standalone_mode=False,
        )
    except CliUsageError as exc:
        _fail(str(exc))
    except ParameterError as exc:
        _fail(f"--{exc.name.replace('_', '-')} {exc.value!r}: {exc.reason}")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:
        # A file the user named cannot be read or written: say which, without a traceback.
        if exc.filename is None:
            raise
        _fail(f"{exc.filename}: {exc.strerror or exc}")
    except Exception as exc:
        # Click-style errors (unknown command/option, bad number) carry these two attributes.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            _fail(str(exc.format_message()), int(exc.exit_code))
        raise
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
