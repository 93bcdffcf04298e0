"""One onnxruntime session per model version, with input checks that name the expected shape.

The agent must not depend on the control plane: this module imports only numpy and onnxruntime.
`InferenceSession.run` is thread-safe and a `ModelRuntime` holds no mutable state after
`__init__`, so one instance serves every request thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from runtime.graph import class_names
from runtime.inputs import InputSpec, all_finite, coerce, spec_of
from runtime.session import open_session, ort_reason

_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
_INT_TYPES = (
    "tensor(int64)",
    "tensor(int32)",
    "tensor(int16)",
    "tensor(int8)",
    "tensor(uint8)",
    "tensor(uint16)",
    "tensor(uint32)",
    "tensor(uint64)",
)
#: a model's inputs as onnxruntime takes them: input name -> array
Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class PredictionResult:
    """One batch's answer: classifiers fill labels and probabilities, regressors values.

    labels int64 [rows] (for string classes: the index of each row's class in `classes`, whose
    names are in class_labels, an object array of str [rows]); probabilities float32
    [rows, classes]; values float32 [rows], or [rows, outputs] for a multi-output regressor.
    """

    labels: np.ndarray | None
    probabilities: np.ndarray | None
    values: np.ndarray | None
    class_labels: np.ndarray | None = None


def _dim(d: object) -> int | None:
    return d if isinstance(d, int) and d >= 0 else None


def feed_rows(feeds: Feeds) -> int:
    """Rows of a batch (every input has the same, once `prepare` accepted it)."""
    return int(next(iter(feeds.values())).shape[0])


def take_rows(feeds: Feeds, rows: np.ndarray) -> Feeds:
    """The given rows of every input."""
    return {name: x[rows] for name, x in feeds.items()}


class ModelRuntime:
    """An open onnxruntime session plus what its tensors look like, checked once at load.

    Inputs: any number, each numeric, bool or string, [rows] or [rows, k] (or any shape with a
    batch axis). Task detection follows the registry's rule (controlplane.onnx_inspect): a
    classifier has an integer or string label output and a float [rows, classes] probabilities
    output; anything else with a numeric output is a regressor whose first float output is the
    value ([rows], or [rows, outputs] for a multi-output regressor).

    At load, every float input is probed: the model runs on one synthetic row with NaN in that
    input; when every float output is finite, the graph handles missing values there (an imputer,
    or trees that route NaN) and NaN is accepted for it (`InputSpec.accepts_missing`).
    """

    def __init__(self, path: Path, intra_op_threads: int = 1) -> None:
        self.path = Path(path)
        #: Scaler nodes run as the Sub and Mul they compute (runtime.session.open_session)
        self.session, self.scalers_replaced = open_session(self.path, intra_op_threads)
        specs = tuple(spec_of(i.name, i.type, i.shape) for i in self.session.get_inputs())
        if not specs:
            raise ValueError("the model has no inputs")
        outputs = self.session.get_outputs()
        self.output_names: list[str] = [o.name for o in outputs]
        self.output_types: dict[str, str] = {o.name: o.type for o in outputs}
        self.label_output: str | None = None
        self.probabilities_output: str | None = None
        self.value_output: str | None = None
        self._identify_outputs(outputs)
        self.task = "classifier" if self.label_output is not None else "regressor"
        self._fetch = (
            [self.label_output, self.probabilities_output]
            if self.task == "classifier"
            else [self.value_output]
        )
        self._classifier = self.task == "classifier"
        #: the class of each probabilities column, as text; None when the graph does not say
        self.classes: tuple[str, ...] | None = None
        self.string_labels = False
        if self.label_output is not None:
            self.classes = class_names(self.path, self.label_output)
            self.string_labels = self.output_types[self.label_output] == "tensor(string)"
            if self.string_labels and self.classes is None:
                raise ValueError(
                    f"the model's label output {self.label_output!r} holds strings, but its graph does not "
                    "name the classes in a way agents read (skl2onnx's classes tensor or classlabels_strings)"
                )
        names: tuple[str, ...] = self.classes or ()
        self._class_index: dict[str, int] = {c: i for i, c in enumerate(names)}
        #: the classes when they say more than the column index (string classes, or integers
        #: other than 0..K-1); None otherwise, so answers need not repeat "0", "1"...
        plain = names == tuple(str(i) for i in range(len(names)))
        self.named_classes: tuple[str, ...] | None = self.classes if self.string_labels or not plain else None
        #: the class names behind string labels (what feedback by name is mapped with); else None
        self.label_classes: tuple[str, ...] | None = self.classes if self.string_labels else None
        # The hot path calls the C session directly: InferenceSession.run re-checks the input
        # names and OrtValue ownership in Python on every call, which `prepare` already settled
        # (and costs as much as running a small model on one row).
        native = getattr(self.session, "_sess", None)
        self._run = native.run if native is not None and hasattr(native, "run") else self.session.run
        self.inputs: tuple[InputSpec, ...] = specs
        self.inputs = self._probe_missing(specs)
        self._by_name = {spec.name: spec for spec in self.inputs}
        self._single = self.inputs[0] if len(self.inputs) == 1 else None
        self._numeric = tuple(s.name for s in self.inputs if s.kind != "string")
        #: a single numeric input is its own metric rows
        self._direct = self._single.name if self._single is not None and self._single.kind != "string" else None
        #: string inputs of one value per row: what the categorical drift windows count
        self._texts = tuple(s.name for s in self.inputs if s.kind == "string" and s.width == 1)

    def _identify_outputs(self, outputs: list[ort.NodeArg]) -> None:
        def rank(o: ort.NodeArg) -> int:
            return len(o.shape or ())

        labels = [o for o in outputs if o.type in (*_INT_TYPES, "tensor(string)") and rank(o) <= 1]
        matrices = [o for o in outputs if o.type in _FLOAT_TYPES and rank(o) == 2]
        if labels and matrices:
            label = next((o for o in labels if o.name == "label"), labels[0])
            probabilities = next((o for o in matrices if o.name == "probabilities"), matrices[0])
            self.label_output, self.probabilities_output = label.name, probabilities.name
            return
        for types in (_FLOAT_TYPES, _INT_TYPES):
            value = next((o for o in outputs if o.type in types), None)
            if value is not None:
                shape = [_dim(d) for d in (value.shape or ())]
                if len(shape) > 2:
                    raise ValueError(
                        f"the model's output {value.name!r} has shape {shape}: agents serve one value or one "
                        "row of values per input row"
                    )
                self.value_output = value.name
                return
        kinds = ", ".join(f"{o.name} {o.type}" for o in outputs)
        raise ValueError(f"the model has no numeric tensor output to serve ({kinds})")

    # ---- inputs ----

    @property
    def input_name(self) -> str:
        """The first input's name (the only one of a single-input model)."""
        return self.inputs[0].name

    @property
    def input_dtype(self) -> np.dtype:
        return self.inputs[0].dtype

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.inputs[0].shape

    @property
    def n_features(self) -> int | None:
        """Width of a single [rows, features] input; None when the model leaves it open or has several."""
        single = self._single
        return single.shape[1] if single is not None and len(single.shape) == 2 else None

    @property
    def accepts_missing(self) -> bool:
        """True when some input takes NaN (its graph handles missing values)."""
        return any(s.accepts_missing for s in self.inputs)

    def expected_shape(self) -> str:
        return self.inputs[0].shape_text()

    def describe_inputs(self) -> str:
        return ", ".join(f"{s.name} {s.describe()}" for s in self.inputs)

    def _synthetic(self, rows: int = 1) -> Feeds:
        """Zeros (empty strings) of every input's dtype and shape."""
        feeds: Feeds = {}
        for spec in self.inputs:
            shape = tuple(rows if a == 0 and d is None else 1 if d is None else d for a, d in enumerate(spec.shape))
            if spec.kind == "string":
                feeds[spec.name] = np.full(shape, "", dtype=object)
            else:
                feeds[spec.name] = np.zeros(shape, spec.dtype)
        return feeds

    def _probe_missing(self, specs: tuple[InputSpec, ...]) -> tuple[InputSpec, ...]:
        """Which float inputs the graph answers finitely with NaN in them (see the class doc)."""
        floats = [s for s in specs if s.kind == "float"]
        if not floats:
            return specs
        base = self._synthetic()

        def finite_with_nan(names: list[str]) -> bool:
            feeds = dict(base)
            for name in names:
                feeds[name] = np.full_like(base[name], np.nan)
            try:
                outputs = self.session.run(None, feeds)
            except Exception:  # noqa: BLE001 - a graph that fails on NaN does not handle it
                return False
            return all(
                all_finite(np.asarray(o))
                for o, name in zip(outputs, self.output_names, strict=True)
                if self.output_types[name] in _FLOAT_TYPES
            )

        if finite_with_nan([s.name for s in floats]):
            accepting = {s.name for s in floats}
        else:
            accepting = {s.name for s in floats if len(floats) > 1 and finite_with_nan([s.name])}
        return tuple(replace(s, accepts_missing=s.name in accepting) for s in specs)

    def prepare(self, columns: np.ndarray | Mapping[str, np.ndarray]) -> Feeds:
        """The request's arrays checked and converted into the model's feeds, or ValueError saying why.

        `columns` is one array (a model with one input) or arrays by input name. No copy is made
        when an array already fits.
        """
        single = self._single
        if isinstance(columns, np.ndarray):
            if single is None:
                raise ValueError(
                    f"the model takes {len(self.inputs)} inputs ({self.describe_inputs()}): send one tensor per "
                    "input by name, or records"
                )
            return {single.name: coerce(single, columns, named=False)}
        if single is not None and len(columns) == 1:
            # One tensor for a one-input model is that input, whatever the caller named it.
            return {single.name: coerce(single, next(iter(columns.values())), named=False)}
        unknown = sorted(name for name in columns if name not in self._by_name)
        missing = [spec.name for spec in self.inputs if spec.name not in columns]
        if unknown or missing:
            problems = []
            if missing:
                problems.append("no " + ", ".join(repr(n) for n in missing[:10]))
            if unknown:
                problems.append("unknown " + ", ".join(repr(n[:64]) for n in unknown[:10]))
            raise ValueError(
                f"the model takes the inputs {self.describe_inputs()}; got {' and '.join(problems)}"
            )
        feeds = {spec.name: coerce(spec, columns[spec.name]) for spec in self.inputs}
        rows = {name: x.shape[0] for name, x in feeds.items()}
        if len(set(rows.values())) > 1:
            first, *_ = rows
            other = next(name for name, n in rows.items() if n != rows[first])
            raise ValueError(
                f"input {other!r} has {rows[other]} rows but input {first!r} has {rows[first]}: every input "
                "needs one entry per row"
            )
        return feeds

    def validate_input(self, x: np.ndarray) -> np.ndarray:
        """A single-input model's batch as a C-contiguous array of its dtype, or ValueError saying why not."""
        return self.prepare(np.asarray(x) if not isinstance(x, np.ndarray) else x)[self.input_name]

    def metric_rows(self, feeds: Feeds) -> np.ndarray:
        """The numeric inputs side by side, [rows, numeric columns], for the drift histograms and
        the reservoir: a single input as it is; several are put side by side in input order and
        strings are left out (counted nowhere yet)."""
        if self._direct is not None:
            return feeds[self._direct]
        rows = feed_rows(feeds)
        parts = [feeds[name].reshape(rows, -1) for name in self._numeric if name in feeds]
        if not parts:
            return np.empty((rows, 0), dtype=np.float32)
        dtype = np.float32 if all(p.dtype == np.float32 for p in parts) else np.float64
        return np.concatenate([p.astype(dtype, copy=False) for p in parts], axis=1)

    def text_columns(self, feeds: Feeds) -> dict[str, np.ndarray] | None:
        """The string inputs of one value per row, by name (None when the model has none): the
        values the agent counts on each input's category bins."""
        if not self._texts:
            return None
        return {name: feeds[name] for name in self._texts if name in feeds}

    # ---- running ----

    def predict(self, feeds: Feeds | np.ndarray) -> PredictionResult:
        """Run a batch that `prepare` accepted (the hot path: it is not checked again)."""
        if isinstance(feeds, np.ndarray):
            feeds = {self.input_name: np.ascontiguousarray(feeds, dtype=self.input_dtype)}
        outputs = self._run(self._fetch, feeds, None)
        if self._classifier:
            labels = outputs[0]
            if labels.ndim != 1:
                labels = labels.reshape(feed_rows(feeds))
            names = None
            if self.string_labels:
                names = labels
                labels = self.class_indices(labels)
            elif labels.dtype != np.int64:
                labels = labels.astype(np.int64)
            return PredictionResult(labels, outputs[1], None, names)
        rows = feed_rows(feeds)
        values = np.asarray(outputs[0])
        values = values.reshape(rows, -1) if values.ndim == 2 and values.size != rows else values.reshape(-1)
        if values.shape[0] != rows:
            raise ValueError(f"the model answered {values.shape[0]} values for {rows} rows")
        if values.dtype != np.float32:
            values = values.astype(np.float32)
        return PredictionResult(None, None, values)

    def class_indices(self, names: np.ndarray) -> np.ndarray:
        """The index in `classes` of each string label (-1 for a class the graph did not name)."""
        index = self._class_index
        if names.shape[0] <= 64:
            return np.fromiter((index.get(n, -1) for n in names.tolist()), dtype=np.int64, count=names.shape[0])
        unique, inverse = np.unique(names, return_inverse=True)
        return np.asarray([index.get(n, -1) for n in unique.tolist()], dtype=np.int64)[inverse.reshape(-1)]

    def run_raw(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output by name for the given feeds.

        Raises ValueError for feeds the model cannot take (wrong names, dtype, shape).
        """
        if self._single is not None and set(feeds) != {self.input_name}:
            raise ValueError(
                f"the model takes one input named {self.input_name!r}, got {sorted(feeds)}"
            )
        checked = self.prepare(dict(feeds))
        try:
            outputs = self.session.run(None, checked)
        except Exception as exc:  # e.g. a shape only the graph knows to be wrong
            raise ValueError(f"the model cannot run on this input: {ort_reason(exc)}") from exc
        return dict(zip(self.output_names, outputs, strict=True))

    def warm_up(self) -> None:
        """One synthetic batch, so the first real request does not pay for lazy initialisation.

        A model with string inputs may refuse the empty string (an encoder without a default
        category): its warm-up failure is no reason to refuse the model.
        """
        try:
            self.session.run(self._fetch, self._synthetic())
        except Exception:
            if all(s.kind != "string" for s in self.inputs):
                raise

    def __repr__(self) -> str:
        return f"ModelRuntime({self.path.name}, {self.task}, inputs {self.describe_inputs()})"
