"""Entry point of the ``qnetkit`` console script.

Click-style usage errors and our own bad-value errors are printed as one line on stderr with
exit status 2; tracebacks are reserved for bugs.

``qnetkit --version`` is answered before anything heavy is imported (typer, NumPy, SciPy,
FastAPI, numba): the typer application is built only when a command runs (``_build_app``), and
``qnetkit.cli.main.app`` stays available as a lazily built attribute.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from qnetkit import __version__
from qnetkit.cli.errors import CliUsageError
from qnetkit.errors import ParameterError

if TYPE_CHECKING:
    import typer

HELP = "qnetkit: quantum networks from photons to delivered keys."


def _hide_flag_types() -> None:
    """Flags take no value, so their help shows no type label (typer would print ``<bool>``)."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_qnetkit_flags_untyped", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich._qnetkit_flags_untyped = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _version_callback(value: bool) -> None:
    if value:
        import typer

        print(f"qnetkit {__version__}")
        raise typer.Exit()


@cache
def _build_app() -> typer.Typer:
    """The typer application with every sub-command (imports the command modules)."""
    import typer

    from qnetkit.cli.demo_cmd import demo
    from qnetkit.cli.entangle_cmd import app as entangle_app
    from qnetkit.cli.keyrate_cmd import app as keyrate_app
    from qnetkit.cli.kms_cmd import app as kms_app
    from qnetkit.cli.network_cmd import app as network_app
    from qnetkit.cli.network_cmd import report as report_cmd
    from qnetkit.cli.network_cmd import sweep as sweep_cmd
    from qnetkit.cli.qkd_cmd import app as qkd_app
    from qnetkit.cli.repeater_cmd import app as repeater_app

    _hide_flag_types()
    app = typer.Typer(
        name="qnetkit",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.add_typer(keyrate_app, name="keyrate")
    app.add_typer(qkd_app, name="qkd")
    app.add_typer(kms_app, name="kms")
    app.add_typer(network_app, name="network")
    app.add_typer(repeater_app, name="repeater")
    app.add_typer(entangle_app, name="entangle")
    app.command("report")(report_cmd)
    app.command("sweep")(sweep_cmd)

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

    app.callback()(_root)
    app.command("demo")(demo)
    return app


def __getattr__(name: str) -> Any:
    # ``from qnetkit.cli.main import app`` (tests, embedding) builds the application on demand.
    if name == "app":
        return _build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"qnetkit: error: {message}\n")
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; exit 2 with a one-line message on any user mistake."""
    args = list(argv) if argv is not None else sys.argv[1:]
    if args[:1] == ["--version"]:
        # Answered here so that it needs none of the imports the commands need.
        print(f"qnetkit {__version__}")
        sys.exit(0)
    import typer

    command = typer.main.get_command(_build_app())
    try:
        result = command.main(
            args=args,
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
            message = str(exc.format_message())
            if not message:  # no arguments: the help was printed, there is nothing to add
                sys.exit(int(exc.exit_code))
            _fail(message, int(exc.exit_code))
        raise
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
