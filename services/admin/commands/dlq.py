"""`rewix-sync dlq list|show|replay|purge`: the dead letters an operator looks after."""
from __future__ import annotations

import json
from typing import Any

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import Failure, fails_cleanly


@click.group()
def dlq() -> None:
    """Dead-lettered messages: list, show, replay, purge.

    Every subcommand first moves the messages waiting in the dead-letter
    queues (rewix.order_lines.dead, rewix.status_changes.dead) into the
    database, where they are kept until replayed or purged.
    """


def _drain(ctx: Context) -> None:
    from services.admin.dead_letters import drain

    drain(ctx.settings.amqp_url, ctx.settings.database_url)


def _ids_or_all(ids: tuple[int, ...], all_: bool, verb: str) -> list[int] | None:
    if all_ and ids:
        raise Failure("give IDs or --all, not both")
    if not all_ and not ids:
        raise Failure(f"name the dead letters to {verb} (IDs from `rewix-sync dlq list`) or give --all")
    return None if all_ else list(ids)


@dlq.command("list")
@click.option("--all", "all_", is_flag=True, help="Also show the dead letters already replayed (with replayed_at).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects instead of a table.")
@pass_context
@fails_cleanly
def dlq_list(ctx: Context, all_: bool, as_json: bool) -> None:
    """The dead letters that still wait for an operator: reason, attempts, first/last failure time.

    A letter once replayed no longer waits (its message is back on its queue);
    --all lists those too, with the time they were replayed.
    """
    from shared.db import session_scope
    from services.admin import columns, dead_letters

    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        rows = [dead_letters.as_dict(r) for r in dead_letters.all_records(session)]
    if not all_:
        rows = columns.waiting(rows)
    if as_json:
        emit_json(rows)
        return
    if not rows and not all_:
        click.echo("no dead letters wait for an operator (`rewix-sync dlq list --all` shows the replayed ones)")
        return
    click.echo(columns.as_text(columns.DEAD_LETTERS, rows))


@dlq.command("show")
@click.argument("id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with headers and body).")
@pass_context
@fails_cleanly
def dlq_show(ctx: Context, id: int, as_json: bool) -> None:  # noqa: A002 - the command's word
    """One dead letter in full: reason, headers and body."""
    from shared.db import session_scope
    from services.admin import dead_letters

    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        try:
            (record,) = dead_letters.find(session, [id])
        except dead_letters.UnknownDeadLetter as exc:
            raise Failure(str(exc)) from None
        data = dead_letters.as_dict(record)
        headers = record.headers
        body = dead_letters.body_bytes(record)
    try:
        parsed_body: Any = json.loads(body)
    except ValueError:
        parsed_body = None
    if as_json:
        emit_json({**data, "headers": headers, "body": body.decode("utf-8", errors="replace")})
        return
    for key, value in data.items():
        click.echo(f"{key + ':':<17}{'-' if value is None else value}")
    click.echo("headers:")
    click.echo(json.dumps(headers, indent=2, ensure_ascii=False, sort_keys=True))
    click.echo("body:")
    if parsed_body is not None:
        click.echo(json.dumps(parsed_body, indent=2, ensure_ascii=False))
    else:
        click.echo(body.decode("utf-8", errors="replace"))


@dlq.command("replay")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter not replayed yet.")
@pass_context
@fails_cleanly
def dlq_replay(ctx: Context, ids: tuple[int, ...], all_: bool) -> None:
    """Put dead letters back on their work queue, unchanged but for a fresh attempt count.

    Safe to repeat: the consumers are idempotent, so replaying a message that
    has since succeeded changes nothing at the supplier.
    """
    from services.admin import dead_letters

    wanted = _ids_or_all(ids, all_, "replay")
    _drain(ctx)
    try:
        done = dead_letters.replay(ctx.settings.database_url, ctx.settings.amqp_url, wanted)
    except dead_letters.UnknownDeadLetter as exc:
        raise Failure(str(exc)) from None
    except KeyError as exc:
        raise Failure(f"cannot replay: {exc.args[0]}") from None
    for item in done:
        click.echo(f"replayed {item.id} to {item.queue} (order {item.order_id if item.order_id is not None else '-'}, "
                   f"message {item.message_id})")
    click.echo(f"{len(done)} dead letter(s) replayed")


@dlq.command("purge")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Drop every dead letter.")
@pass_context
@fails_cleanly
def dlq_purge(ctx: Context, ids: tuple[int, ...], all_: bool) -> None:
    """Drop dead letters for good, after printing what is dropped."""
    from shared.db import session_scope
    from services.admin import dead_letters

    wanted = _ids_or_all(ids, all_, "purge")
    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        try:
            rows = dead_letters.find(session, wanted)
        except dead_letters.UnknownDeadLetter as exc:
            raise Failure(str(exc)) from None
        for row in rows:
            click.echo(f"dropping {row.id}: {row.queue} order {row.order_id if row.order_id is not None else '-'} "
                       f"message {row.message_id}: {row.reason}")
            click.echo(f"  body: {row.body}")
        dead_letters.delete_records(session, rows)
    click.echo(f"{len(rows)} dead letter(s) purged")
