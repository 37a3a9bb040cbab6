"""amsread: read DLMS/COSEM push messages from smart electricity meters.

The pipeline, one module per layer:
    hdlc / mbus (framing) -> apdu (application PDUs) -> security (ciphering)
    -> axdr (data encoding) -> readings (+ profiles, obis) -> output -> cli
``pipeline`` wires the layers together without doing any I/O.
"""

__version__ = "0.1.0"
