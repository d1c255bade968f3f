"""The accounts fixtures live in helpers.py, where the desktop and wallboard tests import them too."""

from tests.accounts.helpers import (  # noqa: F401 - fixtures
    account_service,
    jurisdiction_tree,
    login_limiter,
    session_store,
    users,
)
