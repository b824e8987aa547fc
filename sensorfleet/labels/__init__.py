"""Labels: final-test results (the yield label) from ``<landing>/final_test/`` into the
``final_test`` table, every retest kept, bad rows into ``rejections``."""

from sensorfleet.labels.final_test import FinalTestReport, ingest_final_test, read_final_test_file

__all__ = ["FinalTestReport", "ingest_final_test", "read_final_test_file"]
