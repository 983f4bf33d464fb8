"""Export to OpenVINO IR, NNCF INT8 quantization with an accuracy check, benchmarks."""
