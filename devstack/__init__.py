"""Developer tooling: private PostgreSQL and NATS servers, the one-machine launcher (`segin run`,
`segin token`) and demo seeding. No deployed process imports it (`.importlinter`), and the
container image leaves it out: production code lives in `kernel/`."""
