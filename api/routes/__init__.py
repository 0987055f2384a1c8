"""The HTTP routers, one module (or package) per domain; app-level modules (app, deps,
errors, schemas, config, deployment) and libraries (reporting, tokens, ...) stay in api/."""
