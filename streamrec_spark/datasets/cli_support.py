"""Helpers shared by the dataset scripts in scripts/ (conversion, calibration, generation)."""

from __future__ import annotations

from py4j.protocol import Py4JJavaError


def spark_error_summary(error: BaseException) -> str:
    """Return one line that names the root cause of a Spark failure.

    A failed Spark job reaches Python as a Py4JJavaError whose first line only names the JVM
    call ("An error occurred while calling o392.parquet"). The root Java cause names what to fix,
    for example ``java.lang.NumberFormatException: For input string: "abc"``.
    """
    if isinstance(error, Py4JJavaError):
        cause = error.java_exception
        while cause.getCause() is not None:
            cause = cause.getCause()
        return str(cause.toString())
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
