"""Training side: the phantom cohort, data, models, training, evaluation, calibration."""
