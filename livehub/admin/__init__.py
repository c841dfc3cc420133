"""The admin dashboard at ``/admin``: connections, channels, a channel inspector, publishing,
nodes and disconnecting users, on the server API and the Node façade (docs/admin.md).

Off unless ``admin_password`` or ``admin_token`` is configured (``AdminSettings``).  The page is
plain HTML, CSS and JavaScript shipped in ``livehub/admin/static``; there is no build step.
"""

from __future__ import annotations

from livehub.admin.routes import Admin, install
from livehub.admin.settings import AdminSettings

__all__ = ["Admin", "AdminSettings", "install"]
