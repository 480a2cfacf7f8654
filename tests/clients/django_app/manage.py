#!/usr/bin/env python3
"""A small Django project for switchyard's schema-first tests (tests/it/django.rs)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
