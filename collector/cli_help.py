"""`--help` grouped by purpose, with examples at the end.  click has no option groups:
a command made with `cls=SectionedCommand` lists its options under headings.

An option finds its heading in one of two ways, so that adding one stays one decorator line:
  - by its name in the command's `sections` mapping (heading -> option names, in order),
    e.g. `"Output": ("output_dir", "label", ...)`; or
  - by itself: `@section_option("Output", "--case-id", ...)` (the same as click.option
    with `cls=SectionOption, section="Output"`), which wins over the mapping.
An option in neither is listed under "Other options", never lost."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import click
from click.formatting import wrap_text

OTHER = "Other options"


class SectionOption(click.Option):
    """A click option that names its help heading."""

    def __init__(self, *args, section: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help_section = section


def section_option(section: str, *param_decls, **attrs):
    return click.option(*param_decls, cls=SectionOption, section=section, **attrs)


class SectionedCommand(click.Command):
    """A command whose help lists its options by heading and ends with examples
    (`examples`: (command line, what it does) pairs)."""

    def __init__(self, *args, sections: Mapping[str, Sequence[str]] = (),
                 examples: Sequence[Tuple[str, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.sections = dict(sections)
        self.examples = tuple(examples)

    def section_of(self, param: click.Parameter) -> str:
        own = getattr(param, "help_section", None)
        if own:
            return own
        for heading, names in self.sections.items():
            if param.name in names:
                return heading
        return OTHER

    def grouped_help(self, ctx: click.Context) -> Dict[str, List[Tuple[str, str]]]:
        """{heading: [(option, help)]}, headings in the mapping's order, then new ones, then Other."""
        grouped: Dict[str, List[Tuple[str, str]]] = {heading: [] for heading in self.sections}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                grouped.setdefault(self.section_of(param), []).append(record)
        other = grouped.pop(OTHER, [])
        grouped = {heading: rows for heading, rows in grouped.items() if rows}
        if other:
            grouped[OTHER] = other
        return grouped

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for heading, rows in self.grouped_help(ctx).items():
            with formatter.section(heading):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_examples(self.examples, formatter)
        super().format_epilog(ctx, formatter)


def format_examples(examples: Sequence[Tuple[str, str]], formatter: click.HelpFormatter) -> None:
    if not examples:
        return
    with formatter.section("Examples"):
        for command, meaning in examples:
            formatter.write(" " * formatter.current_indent + command + "\n")
            with formatter.indentation():
                formatter.write(wrap_text(meaning, formatter.width, initial_indent=" " * formatter.current_indent,
                                          subsequent_indent=" " * formatter.current_indent) + "\n")
