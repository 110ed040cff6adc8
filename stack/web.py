"""A web node: daphne, as `python -m daphne` runs it, with Twisted's parse of form bodies turned off.

    python -m stack.web [daphne's arguments] portal.asgi:application

Twisted parses every POST form body into `request.args` before it hands the request on (twisted
issue 4519, open since 2010), with the email package, on the event loop. Daphne never reads
`request.args`: it passes the raw body to the ASGI application, and Django parses it again in the
request's thread. For a photo upload that first parse is pure waste, and it stalls the node: 23 ms
per MB measured here, about 100 ms for a 4 MB phone photo and 350 ms at the 15 MB upload limit,
during which no frame reaches any socket of that node and no other request is read. Twisted's own
switch turns it off (Request's parsePOSTFormSubmission, Twisted 26.10 here).

Used by stack/processes.py, so by `manage.py runportal` (make run, docker-compose.yml), the
integration tests and the benchmarks alike.
"""

from __future__ import annotations

from daphne import http_protocol
from daphne.cli import CommandLineInterface


class WebRequest(http_protocol.WebRequest):
    """daphne's request, leaving the body to the application."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


def main() -> None:
    # daphne's HTTPFactory.buildProtocol names the request class through its module at each connection.
    http_protocol.WebRequest = WebRequest
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
