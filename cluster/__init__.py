"""How Vigil starts: settings, the ``vigil`` CLI, the local stack, Ray and Serve configs."""
