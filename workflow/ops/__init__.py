"""Operating an installation: backup and restore, campaign archives, doctor and its probes.

Nothing here changes the ledger's rules (that is ``workflow/services/``); these modules copy,
move and check what the services wrote. Like the rest of the domain they import nothing from
``tasks/`` or ``notifications/``: the entry points pass in whatever must reach the outside.
"""
