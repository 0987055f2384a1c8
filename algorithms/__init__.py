"""Pure numpy algorithms for sensor streams: no I/O, no Ray, no clock (time is passed in)."""
