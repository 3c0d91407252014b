"""Packaging for streamrec-spark."""

from setuptools import find_packages, setup

setup(
    name="streamrec-spark",
    version="0.1.0",
    description="Data validation, data contracts, model evaluation and a validation gate "
    "for recommendation pipelines on Spark and Delta Lake",
    python_requires=">=3.10",
    packages=find_packages(include=["streamrec_spark", "streamrec_spark.*"]),
    package_data={"streamrec_spark": ["py.typed", "log4j2.properties", "datasets/*.json"]},
    install_requires=[
        # delta-spark 3.3.x is built against Spark 3.5 (Scala 2.12) and pins pyspark <3.6.
        "pyspark==3.5.5",
        "delta-spark==3.3.2",
        "numpy>=1.24",
        "pyyaml>=6.0",
        # The gate records each decision as an MLflow run and registers passing models.
        "mlflow==3.17.2",
    ],
    extras_require={
        "test": ["pytest>=8", "chispa==0.12.0"],
        # Only for loading the daily DAG in tests or a local scheduler; a deployment's
        # Airflow provides its own.
        "airflow": ["apache-airflow==2.10.5"],
    },
    entry_points={"console_scripts": ["streamrec-spark=streamrec_spark.cli:main"]},
)
