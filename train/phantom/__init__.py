"""The synthetic long-leg cohort (PHANTOM.md): person -> muscle -> anatomy -> projection -> DICOM."""

GENERATOR_NAME = "sarco-edge long-leg phantom"
GENERATOR_VERSION = "1.0.0"
