from django.apps import AppConfig


class RecipientListsConfig(AppConfig):
    name = "recipient_lists"
    verbose_name = "Recipient lists"
