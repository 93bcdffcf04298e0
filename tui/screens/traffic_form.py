"""Set the traffic of a deployment: a weight per version (whole percents summing to 100)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual import on
from textual.widget import Widget
from textual.widgets import Input, Static

from tui.screens.form import FormError, FormScreen, entry, field, version_ref, whole


@dataclass(frozen=True)
class TrafficRequest:
    weights: list[tuple[str, int]]
    reason: str
    expected_generation: int | None


class TrafficForm(FormScreen[TrafficRequest]):
    SUBMIT_LABEL = "Set traffic"

    def __init__(self, deployment: str, weights: list[tuple[str, int]], generation: int | None) -> None:
        super().__init__()
        self.deployment = deployment
        self.weights = weights
        self.generation = generation

    def title_text(self) -> str:
        return f"Traffic of {self.deployment} (weights sum to 100; 0 removes a version)"

    def fields(self) -> Iterable[Widget]:
        for i, (version, weight) in enumerate(self.weights):
            yield field(version, entry(str(weight), type="integer", id=f"weight-{i}", classes="weight"))
        yield field("add version", entry(placeholder="MODEL:VERSION (optional)", id="new-version"))
        yield field("its weight", entry(placeholder="0", type="integer", id="new-weight", classes="weight"))
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))
        yield Static("", id="total", classes="dialog-text")

    def on_mount(self) -> None:
        model = self.weights[0][0].split(":", 1)[0] if self.weights else ""
        self.suggest_versions("new-version", model=model)
        self._update_total()
        first = self.query(".weight").first(Input)
        first.focus()

    @on(Input.Changed, ".weight")
    def _update_total(self) -> None:
        total = 0
        for widget in self.query(".weight").results(Input):
            try:
                total += int(widget.value or 0)
            except ValueError:
                pass
        self.query_one("#total", Static).update(f"total {total}%" + ("" if total == 100 else "  (must be 100)"))

    def result(self) -> TrafficRequest:
        weights: list[tuple[str, int]] = []
        for i, (version, _) in enumerate(self.weights):
            weight = whole(self.query_one(f"#weight-{i}", Input).value, f"the weight of {version}", 0, 100, 0)
            weights.append((version, weight))
        new_version = self.query_one("#new-version", Input).value.strip()
        new_weight_text = self.query_one("#new-weight", Input).value
        if new_version:
            version = version_ref(new_version, "added version")
            if any(v == version for v, _ in weights):
                raise FormError(f"{version} is already listed above; change its weight there")
            weights.append((version, whole(new_weight_text, f"the weight of {version}", 0, 100, 0)))
        elif new_weight_text.strip() not in ("", "0"):
            raise FormError("a weight for an added version needs the version (MODEL:VERSION)")
        total = sum(w for _, w in weights)
        if total != 100:
            raise FormError(f"weights sum to {total}; they must sum to 100")
        live = [(v, w) for v, w in weights if w > 0]
        return TrafficRequest(live, self.query_one("#reason", Input).value.strip(), self.generation)
