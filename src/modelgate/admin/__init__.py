"""Administration of tenancy: keys, teams, endpoints and usage, over REST (``api``) and the CLI
(``commands``, ``endpoint_commands``).

``service.Admin`` holds the operations on keys, teams and usage, ``endpoints.EndpointAdmin``
those on per-application endpoints; the API and the CLI are two renderings of them.
"""

from modelgate.admin.api import AdminAPI
from modelgate.admin.endpoints import EndpointAdmin, EndpointUpdate
from modelgate.admin.service import Admin, KeyUpdate, KeyWindows, WindowUsage

__all__ = ["Admin", "AdminAPI", "EndpointAdmin", "EndpointUpdate", "KeyUpdate", "KeyWindows", "WindowUsage"]
