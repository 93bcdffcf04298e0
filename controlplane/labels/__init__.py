"""The label store (docs/PREDICTION_LOG.md): labels as Parquet files, one per import, with each
import's summary in SQL. `store` is the unit of work, `incoming` checks the rows as they arrive,
`classify` judges them in DuckDB, `files` knows where the files are and writes them."""
