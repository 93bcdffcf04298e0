"""The onnxruntime wrapper that agents serve with and offline evaluation scores with.

One place opens sessions with the same settings and turns a model's outputs into labels,
probabilities and values, so an offline verdict judges exactly what an agent would answer. It
needs onnxruntime and numpy (the agent and controlplane extras), and imports only `core`.
`runtime.logsegment` is the other thing both processes share: the prediction log's two file
formats (pyarrow, in both extras too).
"""
