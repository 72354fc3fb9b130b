"""What a failed Docker engine call can raise, and one readable line for it."""

from __future__ import annotations

from docker.errors import APIError, DockerException
from urllib3.exceptions import HTTPError as Urllib3Error

# docker-py raises its own errors, requests' (OSError subclasses), and — from a stream whose connection
# breaks mid-read — urllib3's ProtocolError, which is neither. ValueError: undecodable JSON.
ENGINE_ERRORS: tuple[type[BaseException], ...] = (DockerException, OSError, ValueError, Urllib3Error)


def describe_error(exc: BaseException) -> str:
    """One readable line for a failed engine call."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, PermissionError) or "permission denied" in lowered:
        return "permission denied on the Docker socket (run as root or join the docker group)"
    if "no such file" in lowered or "filenotfounderror" in lowered:
        return "no Docker socket there (is the engine running?)"
    if "connection refused" in lowered:
        return "connection refused (engine not running?)"
    if any(word in lowered for word in ("connection reset", "remote end closed", "broken pipe",
                                        "connection aborted")):
        return "the engine dropped the connection (stopping or restarting?)"
    if "timed out" in lowered or "timeout" in lowered:
        return "no answer within the timeout"
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation).splitlines()[0][:200]
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]
