"""Sign-in for the HTTP API: staff passwords, personal access tokens and browser
sessions, stored in the database so every process that serves it agrees.

These modules need no web framework (the command line creates tokens and sets
passwords); :mod:`crmcore.web` uses them to turn a request's credentials into
the staff key ``--as`` would take. Secrets are stored only as hashes: argon2id
for passwords, SHA-256 for the random secrets of tokens and sessions.
"""

from __future__ import annotations
