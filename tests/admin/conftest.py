import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Each tenant makes several users; PBKDF2 would spend most of these tests hashing passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
