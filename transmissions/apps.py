from django.apps import AppConfig


class TransmissionsConfig(AppConfig):
    name = "transmissions"
