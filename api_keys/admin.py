from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api_keys.models import ApiKey
from api_keys.services import api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["label", "prefix", "grant_list", "created_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["label", "prefix"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    fields = ["label", "prefix", "grants", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created with `manage.py create_api_key`, which shows the key once

    @admin.display(description="grants")
    def grant_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.grants)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")
