"""The HTTP API: a FastAPI app built by ``api.app.create_app``, served by Ray Serve."""
