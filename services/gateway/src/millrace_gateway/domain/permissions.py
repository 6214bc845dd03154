"""Roles and permissions are shared by every service that serves people (``millrace_common.permissions``)."""

from millrace_common.permissions import GRANTS, Permission, Role, allows, permissions_of

__all__ = ["GRANTS", "Permission", "Role", "allows", "permissions_of"]
