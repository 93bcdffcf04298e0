"""What every domain function needs: the database, the artifacts, the config and the event bus."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.artifacts import ArtifactStore
from controlplane.config import Config
from controlplane.events import EventBus
from controlplane.store.db import Database


@dataclass
class Context:
    db: Database
    artifacts: ArtifactStore
    config: Config
    events: EventBus
