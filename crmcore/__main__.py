"""``python -m crmcore`` is the ``crm`` command."""

from crmcore.cli import main

main()
