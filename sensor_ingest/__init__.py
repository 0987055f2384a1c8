"""Getting sensor data into Vigil: gateways, uploaders, and virtual sensors (:mod:`.simulate`)."""
