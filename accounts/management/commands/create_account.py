import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Role
from accounts.services import account_create
from config.errors import DomainError


class Command(BaseCommand):
    help = "Create (or update) a user in an organization's workspace; prints user/org/workspace ids as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="Organization name (created when missing)")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--role", default=Role.ADMIN, choices=Role.values)
        parser.add_argument("--workspace", default=None, help="Workspace slug (default: the org's first workspace)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            result = account_create(
                org_name=str(options["org"]),
                username=str(options["username"]),
                password=str(options["password"]),
                email=str(options["email"] or ""),
                role=str(options["role"]),
                workspace_slug=options["workspace"] and str(options["workspace"]),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(json.dumps(result.as_json()))
