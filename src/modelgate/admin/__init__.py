"""Administration of tenancy: keys, teams and usage, over REST (``api``) and the CLI (``commands``).

``service.Admin`` holds the operations; the API and the CLI are two renderings of it.
"""

from modelgate.admin.api import AdminAPI
from modelgate.admin.service import Admin, KeyUpdate, KeyWindows, WindowUsage

__all__ = ["Admin", "AdminAPI", "KeyUpdate", "KeyWindows", "WindowUsage"]
