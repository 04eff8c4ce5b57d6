"""The routes every collection of an owner's items has, declared once here instead of in each handler:
a page of them (``GET <path>``, optional), one of them (``GET <path>/<id>``), deleting one
(``DELETE <path>/<id>``).

    collection_routes(app, "/sessions", "sessionId", noun="session", tags=["Tutor"],
                      page=Page(SessionPage, "List sessions, newest first", lambda owner, limit, cursor: ...),
                      read=Read(SessionDetail, "A session with its messages in order", lambda owner, item_id: ...),
                      delete=Delete("Delete a session and everything under it", lambda owner, item_id: ...))

The owner comes from the authorizer (``owner_of``). A page takes ``limit`` and ``cursor`` as every
list route does (``PageLimit``, ``PageCursor``). A delete is logged with the item's id and how much
went with it (``Delete.counted``), and answered 204. The route functions are named ``list_<noun>s``,
``get_<noun>`` and ``delete_<noun>`` (the OpenAPI operation ids) and take the path parameter by its
public, camelCase name, as hand-written routes would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from parley.core.api import PageCursor, PageLimit, no_content, owner_of
from parley.core.observability import logger


@dataclass(frozen=True)
class Page:
    answer: type  # the page's model
    summary: str
    list: Callable[[str, int, str | None], Any]  # (owner, limit, cursor) -> the page


@dataclass(frozen=True)
class Read:
    answer: type  # the item's model
    summary: str
    read: Callable[[str, str], Any]  # (owner, item id) -> the item, or NotFound


@dataclass(frozen=True)
class Delete:
    summary: str
    delete: Callable[[str, str], int]  # (owner, item id) -> how many items went (the item and what it held)
    counted: str = "items"  # what that count is called in the log line


def collection_routes(app: APIGatewayRestResolver, path: str, id_param: str, *, noun: str, tags: list[str],
                      read: Read, delete: Delete, page: Page | None = None) -> None:
    """Registers the collection's routes on ``app``; each answer is validated against its model, which
    the OpenAPI document shows."""
    route = f"{path}/<{id_param}>"

    def list_items(limit: PageLimit = 20, cursor: PageCursor = None) -> Any:
        assert page is not None  # registered only with one
        return page.list(owner_of(app), limit, cursor)

    def get_item(**path_params: str) -> Any:
        return read.read(owner_of(app), path_params[id_param])

    def delete_item(**path_params: str) -> Response[str]:
        item_id = path_params[id_param]
        removed = delete.delete(owner_of(app), item_id)
        logger.info(f"{noun.capitalize()} deleted", extra={f"{noun}_id": item_id, delete.counted: removed})
        return no_content()

    # Each function's signature is what the resolver reads to validate the parameters and the answer.
    by_id = [inspect.Parameter(id_param, inspect.Parameter.KEYWORD_ONLY, annotation=str)]
    named: list[tuple[Callable[..., Any], str, inspect.Signature]] = [
        (list_items, f"list_{noun}s", inspect.signature(list_items).replace(return_annotation=page and page.answer)),
        (get_item, f"get_{noun}", inspect.Signature(by_id, return_annotation=read.answer)),
        (delete_item, f"delete_{noun}", inspect.Signature(by_id, return_annotation=Response[str]))]
    for function, name, signature in named:
        function.__name__ = function.__qualname__ = name
        function.__signature__ = signature  # type: ignore[attr-defined]
    if page is not None:
        app.get(path, summary=page.summary, tags=tags)(list_items)
    app.get(route, summary=read.summary, tags=tags)(get_item)
    app.delete(route, summary=delete.summary, tags=tags, responses={204: {"description": "Deleted"}})(delete_item)
