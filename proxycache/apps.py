from django.apps import AppConfig


class ProxyCacheConfig(AppConfig):
    name = "proxycache"
    verbose_name = "Proxy cache"
