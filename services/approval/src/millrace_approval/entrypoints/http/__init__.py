"""The approval service's HTTP entry: the approvals API (``api``), the approver's inbox (``inbox``),
their dependencies (``deps``), and the domain's refusals as problem details (``errors``)."""
