"""Traffic of one deployment: a bar per version, as wide as the widget allows."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from protos import common_pb2
from tui.format import bar, champion_first, role_name, vref

ROLE_STYLES = {
    common_pb2.ROLE_CHAMPION: "cyan",
    common_pb2.ROLE_CHALLENGER: "magenta",
    common_pb2.ROLE_SHADOW: "yellow",
}


class TrafficBars(Widget):
    DEFAULT_CSS = """
    TrafficBars {
        height: auto;
    }
    """

    splits: reactive[tuple[common_pb2.TrafficSplit, ...]] = reactive((), layout=True)

    def render(self) -> RenderableType:
        if not self.splits:
            return Text("no traffic: deploy a version with d", style="dim")
        splits = champion_first(self.splits)
        names = [vref(s.version) for s in splits]
        name_width = max(len(n) for n in names)
        bar_width = max(8, self.size.width - name_width - 18)
        text = Text()
        for i, (split, name) in enumerate(zip(splits, names, strict=True)):
            if i:
                text.append("\n")
            style = ROLE_STYLES.get(split.role, "white")
            text.append(f"{role_name(split.role):<11}", style=style)
            text.append(f"{name:<{name_width}} ")
            text.append_text(bar(split.weight, bar_width, style))
            text.append(f" {split.weight:>3}%")
        return text

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.splits))
