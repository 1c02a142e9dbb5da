"""A minimal Django project using authstate (docs/django.md)."""
