"""The `funade` command: one typer app, one module per noun."""

from __future__ import annotations

import typer

from funade.cli import analysis, apps, image, imagestore, policy, registry, scan, server, vuln, workload

__all__ = ["app", "main"]

app = typer.Typer(
    name="funade",
    help="funade: container delivery from Dockerfile to healthy rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server.register(app)
workload.register(app)
imagestore.register(image.app)
scan.register(image.app)
app.add_typer(image.app, name="image")
app.add_typer(registry.app, name="registry")
app.add_typer(analysis.app, name="analysis")
app.add_typer(apps.app, name="app")
app.add_typer(vuln.app, name="vuln")
app.add_typer(policy.app, name="policy")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
