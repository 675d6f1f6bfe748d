import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.celery import tune_garbage_collector  # noqa: E402
from core.hot_path import HotPathApplication  # noqa: E402 - needs Django set up

# Lookup and routing decide are answered below Django's handler (core/hot_path.py).
application = HotPathApplication(django_application)

# As in the worker processes: the start-up objects out of collections, the young collected less
# often. Full collections walking them made a lookup's slowest 1 % several times slower.
tune_garbage_collector()
