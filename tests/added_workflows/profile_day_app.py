"""The rows of each label of a day's CSV files (a header each, the label last), as JSON: a PySpark application
that smspark-submit runs. Arguments: the day's folder, the output folder."""
import json
import sys
from pathlib import Path

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("profile-day").getOrCreate()
rows = spark.read.csv(sys.argv[1], header=True)
label = rows.columns[-1]
counts = {row[label]: row["count"] for row in rows.groupBy(label).count().collect()}
Path(sys.argv[2], "profile.json").write_text(json.dumps({"label": label, "rows": counts}, sort_keys=True))
spark.stop()
