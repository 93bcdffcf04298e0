"""What one metric report may hold: the agent builds its reports within these limits and the
control plane refuses a window beyond them (a buggy or hostile agent), so both read them here."""

import grpc

#: relative accuracy of every latency sketch: sketches merge only when it is the same
LATENCY_ACCURACY = 0.01
MAX_FEATURES = 4096
MAX_BINS = 1024
#: most classes counted in a classifier's prediction histogram
MAX_CLASSES = 1024
MAX_SKETCH_BUCKETS = 100_000
MAX_ERROR_CODES = 64
#: every counter of a window is clamped to this on ingest, and merged counters saturate at it: a
#: sum of counters always fits a signed 64-bit SQL integer and stays exact as a float
MAX_COUNT = 2**53
#: the error codes a window may name: gRPC's status names; any other counts as UNKNOWN, so an
#: agent cannot create Prometheus series (deployment x version x code) by inventing codes
ERROR_CODES = frozenset(code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK)
UNKNOWN_ERROR_CODE = "UNKNOWN"
#: most categories of a categorical feature's frequency window (top-k of the baseline; "other"
#: is one more bin)
MAX_CATEGORIES = 256
#: most baseline categories an agent is told beyond the top-k, to tell "other" from "unseen"
MAX_KNOWN_CATEGORIES = 1000
