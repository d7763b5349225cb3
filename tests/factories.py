from __future__ import annotations

import factory
from django.contrib.auth.models import User

from accounts.models import Membership, Organization, Role, Workspace
from connectors.crypto import encrypt
from connectors.models import DataSource


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pass-word-123")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws-{n}")
    features = factory.LazyFunction(lambda: {"ai.query_writer_enabled": True})


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.ANALYST


class DataSourceFactory(factory.django.DjangoModelFactory):
    """A SQLite source by default; give `path` (under DATA_SOURCE_FILE_ROOTS) or server fields."""

    class Meta:
        model = DataSource

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Source {n}")
    alias = factory.Sequence(lambda n: f"src_{n}")
    connector_type = "sqlite"

    @classmethod
    def _create(cls, model_class, *args, password: str = "", **kwargs):  # noqa: ANN001, ANN206
        # The password is stored the way the service stores it: encrypted, never in plaintext.
        if password:
            kwargs["password_encrypted"] = encrypt(password)
        return super()._create(model_class, *args, **kwargs)
