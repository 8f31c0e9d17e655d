"""The only public edge: OAuth 2.0 authorization server, organisation registry, GraphQL API."""
