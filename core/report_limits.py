"""What one metric report may hold: the agent builds its reports within these limits and the
control plane refuses a window beyond them (a buggy or hostile agent), so both read them here."""

#: relative accuracy of every latency sketch: sketches merge only when it is the same
LATENCY_ACCURACY = 0.01
MAX_FEATURES = 4096
MAX_BINS = 1024
#: most classes counted in a classifier's prediction histogram
MAX_CLASSES = 1024
MAX_SKETCH_BUCKETS = 100_000
MAX_ERROR_CODES = 64
