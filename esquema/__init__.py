"""The GraphQL schema (Strawberry)."""
