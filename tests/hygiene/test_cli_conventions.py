"""CLI conventions: one name per concept, Enums for choices, examples in every command's help."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from artflow.cli import app, run
from artflow.commands.options import Family, PipelineName

ROOT_COMMAND = typer.main.get_command(app)


def _commands(cmd: Any = ROOT_COMMAND, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """Every command and group of the CLI with its path (the root is ())."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _runnable() -> list[tuple]:
    """Commands a user runs: leaves, and groups that do something without a sub-command."""
    return [
        (path, cmd)
        for path, cmd in _commands()
        if path and (not hasattr(cmd, "commands") or cmd.invoke_without_command)
    ]


def _options(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if p.param_type_name == "option"]


def _parse(argv: list[str]) -> tuple[str, ...]:
    """Parse (never run) `artflow ARGV`; the command path it reaches. Unknown options, bad
    choices and missing required values raise click's usage errors."""
    cmd, ctx, path, rest = ROOT_COMMAND, None, [], argv
    while True:
        ctx = cmd.make_context(cmd.name or "artflow", rest, parent=ctx)
        if not hasattr(cmd, "commands"):
            return tuple(path)
        protected = getattr(ctx, "protected_args", None) or ctx._protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            return tuple(path)
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        path.append(name)


def test_short_flags_and_long_names_mean_one_thing_across_commands() -> None:
    longs_of: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    helps: dict[str, set[str]] = defaultdict(set)
    for _, cmd in _commands():
        for opt in _options(cmd):
            longs = tuple(o for o in opt.opts if o.startswith("--"))
            for short in (o for o in opt.opts if re.fullmatch(r"-[A-Za-z]", o)):
                longs_of[short].add(longs)
            helps[longs[0]].add(opt.help or "")
    assert {s: v for s, v in longs_of.items() if len(v) > 1} == {}
    assert longs_of["-m"] == {("--model-uri",)}
    assert "--model" not in helps  # a model version is --model-uri, a family is --family
    assert len(helps["--model-uri"]) == len(helps["--workdir"]) == 1  # declared once


@pytest.mark.parametrize(
    ("path", "choices"),
    [
        (["train", "classifier"], "<cnn|resnet50>"),
        (["evaluate"], "<train|val|test>"),
        (["stylize"], "<fast|gatys|monet>"),
        (["pipeline", "run"], "<training|style|retrain>"),
        ([], "<auto|rich|plain|json>"),
    ],
)
def test_choices_are_enums_listed_in_help(path, choices, capsys) -> None:
    assert run([*path, "--help"]) == 0
    assert choices in capsys.readouterr().out


def test_enums_name_what_the_library_declares() -> None:
    import pipelines
    from artflow import families

    assert set(PipelineName) == set(pipelines.PIPELINES)
    assert set(Family) == set(families.names("classifier"))


def test_every_command_shows_examples_that_parse() -> None:
    for path, cmd in _runnable():
        assert cmd.epilog and cmd.epilog.startswith("Examples:"), " ".join(path)
        examples = [p.strip() for p in cmd.epilog.split("\n\n")[1:]]
        assert examples, " ".join(path)
        for example in examples:
            argv = shlex.split(example)
            assert argv[0] == "artflow", example
            assert _parse(argv[1:]) == path, example


def test_the_parser_refuses_what_the_cli_refuses() -> None:
    import click
    from typer._click.exceptions import UsageError

    with pytest.raises((UsageError, click.UsageError)):
        _parse(["train", "classifier", "--family", "vgg16"])
    with pytest.raises((UsageError, click.UsageError)):
        _parse(["evaluate", "--model", "champion"])
    assert _parse(["drift", "reference", "-m", "3"]) == ("drift", "reference")
