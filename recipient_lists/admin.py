from django.contrib import admin
from django.http import HttpRequest

from recipient_lists.models import RecipientList


@admin.register(RecipientList)
class RecipientListAdmin(admin.ModelAdmin):
    """Read-only overview; lists are written through the API (recipients are stored in bulk)."""

    list_display = ["id", "name", "total_accepted_recipients", "updated_at"]
    search_fields = ["id", "name"]
    readonly_fields = [
        "id",
        "name",
        "description",
        "attributes",
        "total_accepted_recipients",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecipientList | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RecipientList | None = None) -> bool:
        return False  # deletes go through the API, which refuses lists in use
