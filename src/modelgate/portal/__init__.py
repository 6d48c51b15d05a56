"""The web portal under ``/portal``: server-rendered pages for operators and key holders
(see ``docs/portal.md`` and ``docs/decisions/0004-portal.md``)."""

from modelgate.portal.app import Portal

__all__ = ["Portal"]
