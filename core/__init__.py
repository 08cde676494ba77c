"""Shared infrastructure every app may import: Redis client, metrics, the API error shape and
parsers, validators, pseudonymisation, SQL helpers and the embedded Redis. Imports no app."""
