"""API 2010: accounts and subaccounts (models, responses, urls)."""
