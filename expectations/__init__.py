"""Expectations: Great Expectations suites, one per checked asset, and the code that runs them."""

import warnings

# Great Expectations imports pyspark whenever it is installed (the Spark engine is), and pyspark
# warns about the pandas release on import; Linli's suites never run on pandas-on-Spark.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
