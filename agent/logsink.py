"""The prediction log's S3 sink: an agent writes its closed segments to an S3-compatible bucket.

`sluice agent --log-sink s3://BUCKET/PREFIX [--s3-endpoint URL] [--s3-region R]`; the credentials
come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or any
source of the AWS default chain), never from the command line, and are never printed. The sink
belongs to the agent, not to the deployment: the credentials live on the host that writes, and a
snapshot never carries a secret.

A segment's object is `PREFIX/deployment=D/date=YYYY-MM-DD/version=V/<agent id>-<segment id>.parquet`
(the control plane's local layout). pyarrow's S3 output stream makes the object visible only
when its upload completes (a single PUT or a completed multipart upload), so no reader ever sees
half a segment; an upload cut short leaves nothing under the key. Uploading the same segment
again writes the same bytes to the same key, so a retry never doubles it.

The pending segment is a record file (`runtime.logrecords`); the object is the log's Parquet
file, so the agent converts it before the upload (`runtime.logsegment.to_parquet`, in the
shipper's worker thread; pyarrow loads then). That is the CPU and memory the local sink saves the
agent (docs/PERFORMANCE.md): with an S3 sink the agent pays them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.errors import InvalidInput

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

    from agent.logpending import SegmentInfo

log = logging.getLogger("sluice.agent")

#: seconds to connect and for one request: a sink that is down fails fast and the shipper backs off
CONNECT_TIMEOUT = 3.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or without slashes at either end

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_sink(uri: str) -> S3Location:
    """`s3://bucket[/prefix]` (InvalidInput naming what is wrong)."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidInput(f"--log-sink {uri!r}: give s3://BUCKET or s3://BUCKET/PREFIX")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidInput(f"--log-sink {uri!r}: no credentials, query or fragment in the URI (credentials: env)")
    prefix = parts.path.strip("/")
    if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
        raise InvalidInput(f"--log-sink {uri!r}: the prefix has an empty, '.' or '..' part")
    return S3Location(parts.netloc, prefix)


def check_endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise InvalidInput(f"--s3-endpoint {url!r}: give http(s)://HOST[:PORT] (credentials come from the env)")
    return url


def segment_key(location: S3Location, agent_id: str, info: SegmentInfo) -> str:
    """The object's key (without the bucket)."""
    relative = (
        f"deployment={info.deployment}/date={info.date}/version={info.version}/{agent_id}-{info.segment_id}.parquet"
    )
    return f"{location.prefix}/{relative}" if location.prefix else relative


class S3Sink:
    """Uploads segments; one S3FileSystem, made on first use (pyarrow's S3 support loads then)."""

    def __init__(self, location: S3Location, agent_id: str, endpoint: str = "", region: str = "") -> None:
        self.location = location
        self.agent_id = agent_id
        self.endpoint = endpoint
        self.region = region
        self._fs: S3FileSystem | None = None

    def _filesystem(self) -> S3FileSystem:
        if self._fs is None:
            from pyarrow import fs

            kwargs: dict[str, object] = {
                "connect_timeout": CONNECT_TIMEOUT,
                "request_timeout": REQUEST_TIMEOUT,
                # one attempt per upload: the shipper retries with its own backoff, and a sink
                # that is down must not hold the shipping loop for minutes
                "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=1),
            }
            if self.endpoint:
                parts = urlsplit(self.endpoint)
                kwargs["endpoint_override"] = parts.netloc
                kwargs["scheme"] = parts.scheme
            if self.region:
                kwargs["region"] = self.region
            self._fs = fs.S3FileSystem(**kwargs)
        return self._fs

    def upload(self, info: SegmentInfo, agent: str) -> tuple[str, int]:
        """Write the segment's file to its key, as Parquet (`agent`: its rows' agent column);
        (its s3:// URI, its size). OSError when the sink cannot take it now (down, refused, no
        such bucket)."""
        from runtime.logsegment import to_parquet

        # The bucket holds the log's Parquet files, read as they are (no control plane between):
        # the pending record file is converted here, on the agent, off the request path.
        data = to_parquet(info.path.read_bytes(), agent)
        key = segment_key(self.location, self.agent_id, info)
        with self._filesystem().open_output_stream(f"{self.location.bucket}/{key}") as stream:
            stream.write(data)
        return f"s3://{self.location.bucket}/{key}", len(data)
