import json

from django.core.management.base import BaseCommand, CommandParser

from accounts.demo import DEMO_PASSWORD, DEMO_USERNAME, OPERATOR_PASSWORD, OPERATOR_USERNAME, seed_demo_account
from connectors.demo import seed_demo_source


class Command(BaseCommand):
    help = "Create or refresh the demo workspace, users, API key and data (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the demo credentials as one JSON object")

    def handle(self, *args: object, **options: object) -> None:
        account = seed_demo_account()
        source = seed_demo_source(analyst=account.analyst)
        summary = {
            "workspace_id": account.workspace.pk,
            "workspace_slug": account.workspace.slug,
            "username": DEMO_USERNAME,
            "password": DEMO_PASSWORD,
            "operator_username": OPERATOR_USERNAME,
            "operator_password": OPERATOR_PASSWORD,
            "api_key": account.api_key,
            "data_source_id": source.pk,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo workspace {account.workspace.slug!r} is ready."))
