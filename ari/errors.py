"""Errors from ARI, classified by what they mean for a call.

Most ARI errors during a call are ordinary races, not faults: the caller hung up
between our decision and our command (404), the channel left our application (409),
or an externalMedia channel has not entered Stasis yet (422). Call flows catch the
specific class and carry on.
"""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed. ``status`` is the HTTP status (0 for transport errors)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.method, self.path, self.status, self.message = method, path, status, message


class AriBadRequest(AriError):
    """400: we sent invalid parameters — a bug on our side, never a race."""


class AriUnauthorized(AriError):
    """401: wrong ARI credentials."""


class AriNotFound(AriError):
    """404: the channel, bridge, playback or recording no longer exists (usually a hang-up)."""


class AriNotInStasis(AriError):
    """409: the channel is not (or no longer) in a Stasis application, or a conflict."""


class AriPreconditionFailed(AriError):
    """412: the channel is in a state that does not allow the operation."""


class AriUnprocessable(AriError):
    """422: e.g. adding a channel to a bridge before it entered Stasis (FIELD-NOTES)."""


class AriUnavailable(AriError):
    """Asterisk could not be reached, timed out or answered 5xx."""


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    404: AriNotFound,
    409: AriNotInStasis,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
}

#: The errors a call flow treats as "the call moved on without us".
CALL_GONE = (AriNotFound, AriNotInStasis, AriPreconditionFailed)


def error_for(method: str, path: str, status: int, message: str) -> AriError:
    if status >= 500 or status == 0:
        return AriUnavailable(method, path, status, message)
    return _BY_STATUS.get(status, AriError)(method, path, status, message)
