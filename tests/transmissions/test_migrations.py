from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("transmissions", "0005_transmission_template_snapshot")]
AFTER = [("transmissions", "0006_message_states_named_after_events")]
OLD = {
    "a@example.com": ("sent", ""),
    "b@example.com": ("failed", "550 5.1.1 no such user"),
    "c@example.com": ("failed", "generation: the render failed"),
    "d@example.com": ("deferred", "451 4.3.0 try later"),
    "e@example.com": ("queued", ""),
}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _states(apps) -> dict[str, tuple[str, str]]:
    rows = apps.get_model("transmissions", "Message").objects.values_list("email", "state", "last_error")
    return {email: (state, error) for email, state, error in rows}


def test_stored_messages_move_to_the_states_named_after_their_events_and_back(transactional_db):
    apps = _migrate(BEFORE)
    try:
        transmission = apps.get_model("transmissions", "Transmission").objects.create()
        Message = apps.get_model("transmissions", "Message")
        for number, (email, (state, error)) in enumerate(OLD.items()):
            Message.objects.create(
                transmission=transmission, chunk=0, message_id=f"{number:020x}", email=email, recipient={},
                state=state, last_error=error,
            )  # fmt: skip

        assert _states(_migrate(AFTER)) == {
            "a@example.com": ("delivered", ""),
            "b@example.com": ("bounced", "550 5.1.1 no such user"),
            "c@example.com": ("generation_failed", "the render failed"),
            "d@example.com": ("delayed", "451 4.3.0 try later"),
            "e@example.com": ("queued", ""),
        }
        assert _states(_migrate(BEFORE)) == OLD
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
