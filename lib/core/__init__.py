"""Foundations every other package stands on: configuration, the database and its sessions, the
models and migrations, settings, translations, China time and the working-day calendar, input
checks, errors, reference data and the generic move engine."""
