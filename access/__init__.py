"""API keys (publishable and secret), their authentication, permissions and rate limits."""
