"""Roles and permissions are shared by every service that serves people
(``millrace_common.platform.permissions``)."""

from millrace_common.platform.permissions import GRANTS, Permission, Role, allows, permissions_of

__all__ = ["GRANTS", "Permission", "Role", "allows", "permissions_of"]
