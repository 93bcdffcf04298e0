"""Deploy a version: it becomes the deployment's champion at 100% (creates the deployment if new)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.widget import Widget
from textual.widgets import Input

from core.errors import InvalidInput
from core.names import validate_name
from tui.screens.form import FormError, FormScreen, entry, field, version_ref


@dataclass(frozen=True)
class DeployRequest:
    deployment: str
    version: str
    reason: str
    expected_generation: int | None


class DeployForm(FormScreen[DeployRequest]):
    TITLE_TEXT = "Deploy a version (champion at 100%)"
    SUBMIT_LABEL = "Deploy"

    def __init__(self, deployment: str = "", version: str = "", generation: int | None = None) -> None:
        super().__init__()
        self.deployment = deployment
        self.version = version
        self.generation = generation

    def fields(self) -> Iterable[Widget]:
        yield field("deployment", entry(self.deployment, placeholder="e.g. cancer-web", id="deployment"))
        yield field("version", entry(self.version, placeholder="MODEL:VERSION", id="version"))
        yield field("reason", entry(placeholder="optional, for the audit log", id="reason"))

    def on_mount(self) -> None:
        self.suggest_versions("version")
        self.query_one("#version" if self.deployment else "#deployment", Input).focus()

    def result(self) -> DeployRequest:
        deployment = self.query_one("#deployment", Input).value.strip()
        try:
            validate_name("deployment", deployment)
        except InvalidInput as exc:
            raise FormError(str(exc)) from None
        version = version_ref(self.query_one("#version", Input).value)
        # The generation guards against a concurrent change only when deploying where we looked.
        expected = self.generation if deployment == self.deployment else None
        return DeployRequest(deployment, version, self.query_one("#reason", Input).value.strip(), expected)
