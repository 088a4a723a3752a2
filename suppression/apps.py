from django.apps import AppConfig


class SuppressionConfig(AppConfig):
    name = "suppression"
    verbose_name = "Suppression list"
