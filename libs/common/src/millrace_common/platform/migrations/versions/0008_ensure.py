"""``millrace_ensure(ok, reason)``: a statement that must hold a condition raises ``check_violation``
with ``reason`` when it does not, so that everything else the statement writes is undone with it.

The orchestrator writes a batch decided on its cached run states in one statement that also
checks, against the tables as they are, that those states and the workflows' load were what the
decisions assumed (see ``millrace_orchestrator.handlers``).

Revision ID: 0008_ensure
"""

from alembic import op

revision = "0008_ensure"
down_revision = "0007_workflow_starts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create function millrace_ensure(ok boolean, reason text) returns boolean
        language plpgsql volatile as $$
        begin
            if ok is not true then
                raise exception using errcode = 'check_violation', message = reason;
            end if;
            return true;
        end
        $$;
        """
    )


def downgrade() -> None:
    op.execute("drop function millrace_ensure(boolean, text);")
