from django.apps import AppConfig


class SmtpInjectionConfig(AppConfig):
    name = "smtp_injection"
    verbose_name = "SMTP injection"
