"""All handlers, one router per command family, assembled in the order they are tried."""

from __future__ import annotations

from aiogram import Router

from bot.telegram.filters import ChatAdmin, RouterTakes
from bot.telegram.handlers import (
    add,
    add_hints,
    alerts,
    balance,
    errors,
    escalate,
    fallback,
    history,
    manage,
    membership,
    mute,
    settings,
    start,
    status,
)
from bot.telegram.handlers.add_dialog import AddAccount
from bot.telegram.handlers.add_rights import SecretFirst


def create_router() -> Router:
    admin = Router(name="admin")
    # Last among them: what a step of the /add dialog does not take, which the others did not.
    admin.include_routers(
        *(add.router, manage.router, settings.router, mute.router, escalate.router),
        add_hints.router,
    )
    # The cheap rule first: the admin lookup only for what these routers would take.
    takes = RouterTakes(admin)
    admin.message.filter(takes, ChatAdmin())
    # Around the rules: a password is deleted even when they refuse or cannot ask Telegram.
    admin.message.outer_middleware(SecretFirst(secret_step=AddAccount.secret.state))
    admin.callback_query.filter(takes, ChatAdmin())

    root = Router(name="handlers")
    # Readers first (anyone may read), then what admins may do, then /start and /help (after
    # the group hand-off's /start link), and last whatever is left over.
    root.include_routers(
        errors.router,
        membership.router,
        balance.router,
        history.router,
        alerts.router,
        admin,
        add.handoff_router,
        start.router,
        status.router,
        fallback.router,
    )
    return root
