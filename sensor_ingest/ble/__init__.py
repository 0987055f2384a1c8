"""The BLE gateway: Bluetooth SIG CGM (0x181F) and Health Thermometer (0x1809) sensors to Vigil.

``cgm``, ``hts``, ``racp``, ``ieee11073`` and ``crc`` are pure codecs (bytes ⇄ typed records,
:class:`~sensor_ingest.ble.errors.DecodeError` naming the field). ``gateway`` drives each
sensor through a small GATT link interface (``link``) into a durable SQLite queue
(``queue``) that ``uploader`` drains to Vigil. ``bumble_link`` and ``bleak_link`` implement
the link; ``virtual`` holds bumble GATT peripherals driven by the simulator personas.
"""
