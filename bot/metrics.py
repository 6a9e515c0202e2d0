"""Prometheus metrics: one registry per app, so tests and replicas never share counters by accident."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "headroom_requests", "Questions handled, by surface and outcome", ["surface", "outcome"], registry=r
        )
        self.planning_seconds = Histogram(
            "headroom_planning_seconds",
            "Time to parse, plan and render one answer",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.cache = Counter("headroom_answer_cache", "Answer cache lookups", ["result"], registry=r)
        self.slack_errors = Counter(
            "headroom_slack_api_errors", "Slack Web API errors", ["method", "error"], registry=r
        )
        self.slack_retries = Counter("headroom_slack_api_retries", "Slack Web API retries", ["reason"], registry=r)
        self.redis_errors = Counter("headroom_redis_errors", "Redis operations that failed", ["operation"], registry=r)
        self.duplicates = Counter("headroom_duplicate_deliveries", "Slack deliveries skipped as duplicates", registry=r)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
