"""Who may do what: roles and the permissions they grant. Pure."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    OPERATOR = "operator"
    VIEWER = "viewer"
    APPROVER = "approver"


class Permission(StrEnum):
    READ = "read"
    EDIT_WORKFLOWS = "edit_workflows"
    OPERATE_RUNS = "operate_runs"
    EDIT_RECORDS = "edit_records"
    MANAGE_TENANT = "manage_tenant"
    APPROVE = "approve"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.EDITOR: frozenset({Permission.READ, Permission.EDIT_WORKFLOWS, Permission.EDIT_RECORDS}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE_RUNS, Permission.EDIT_RECORDS}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
}


def permissions_of(roles: frozenset[Role]) -> frozenset[Permission]:
    return frozenset(p for role in roles for p in GRANTS[role])


def allows(roles: frozenset[Role], permission: Permission) -> bool:
    return permission in permissions_of(roles)
