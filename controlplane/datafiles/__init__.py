"""Where the control plane's data files are: the prediction log's segments (under the log
directory, or S3 objects read through a local cache) and the label store's Parquet files.

Below both `predlog` and `labels`, which read each other's files: `files` (the directories, the
recorded files, atomic Parquet writes), `storage` (a segment's bytes, local or S3) and `s3cache`
(the bounded local copies of S3 segments).
"""
