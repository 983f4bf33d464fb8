"""sarco-edge clinic runtime: reads films, runs the OpenVINO model, reports. No torch here."""
__version__ = "0.1.0"
