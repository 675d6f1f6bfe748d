import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from core.hot_path import HotPathApplication  # noqa: E402 - needs Django set up

# Lookup and routing decide are answered below Django's handler (core/hot_path.py).
application = HotPathApplication(django_application)
