"""FHIR R4 per the HL7 CGM implementation guide (hl7.org/fhir/uv/cgm)."""
