"""Partition validation: metrics computed in Spark, verdicts judged on the driver."""
