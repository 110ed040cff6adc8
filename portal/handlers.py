"""Django's HTTP handling for a web process, with each request's synchronous work in one thread.

Every view, every middleware and DRF itself here are synchronous. Under Django's ASGIHandler a
request still crosses between the event loop and a thread about six times: the request_started
signal, the middleware chain built in async mode (a synchronous middleware inside it calls the async
request handler back through async_to_sync, which calls the view through sync_to_async), each
view middleware's process_view, and response.close(). Each crossing waits for the event loop, which in
a web process is also sending thousands of WebSocket frames. Django's documentation names the cost
("Asynchronous support": a synchronous middleware in an ASGI stack costs a context switch per
request). This handler builds the middleware chain in synchronous mode, as a WSGI server would, and
runs the signal, the chain and, for a response already in memory, its close in one call on a thread
of the process's HTTP pool: the event loop reads the body, hands it over once, and sends the answer.
A streamed response (a photo, an overlay) is sent as Django's own handler sends it, and closed after,
also when the client went away first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.urls import set_script_prefix

logger = logging.getLogger(__name__)


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGIHandler (the body read, the request built, the response sent as it does), with the
    middleware chain in synchronous mode and each request's work in one call on the HTTP pool."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(max_workers=settings.WEB_HTTP_THREADS, thread_name_prefix="http")
        self.respond = sync_to_async(self._respond, thread_sensitive=False, executor=self.executor)
        self.close = sync_to_async(self._close, thread_sensitive=False, executor=self.executor)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        work = asyncio.ensure_future(self.respond(scope, body_file))
        try:
            response = await asyncio.shield(work)
        except asyncio.CancelledError:
            # The client went away and daphne cancelled the request: its thread still finishes it, and
            # the response is closed all the same (request_finished: the database connection goes back).
            work.add_done_callback(functools.partial(self._abandoned, body_file=body_file))
            raise
        except BaseException:
            body_file.close()
            raise
        try:
            await self.send_response(response, send)
        finally:
            if response.streaming:
                await self.close(response)
            body_file.close()

    def _abandoned(self, work: asyncio.Future, *, body_file) -> None:
        if not work.cancelled() and work.exception() is None and work.result().streaming:
            self.executor.submit(self._close, work.result())
        body_file.close()

    def _respond(self, scope, body_file):
        """The request, from the request_started signal to the response: one thread, start to end."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            self._close(response)  # its content is in memory: closed here, before it is sent
        return response

    @staticmethod
    def _close(response) -> None:
        """request_finished (database connections back) and the response's own resources."""
        try:
            response.close()
        except Exception:
            logger.exception("closing the response failed")
