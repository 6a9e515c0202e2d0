"""Prometheus metrics: one registry per app, so tests and replicas never share counters by accident.

Every label value comes from a fixed set below: a value from a request (an event type, an error
string from an API) is mapped onto that set first, so no request can add series to /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.paste_patterns import KINDS as PASTE_KINDS

OTHER = "other"
SURFACES = frozenset({"mention", "dm", "thread", "command", "button", "home", "event", "assistant", "feedback", OTHER})
OUTCOMES = frozenset(
    {"answer", "diagnosis", "error", "help", "reset", "chatter", "rate_limited", "duplicate", "failed", "expired", "ignored", OTHER}
)
REJECTIONS = frozenset({"too_large", "bad_signature", "malformed", OTHER})
RETRY_REASONS = frozenset({"connection", "timeout", "rate_limited", "server_error", OTHER})
REDIS_OPERATIONS = frozenset({"get", "set", "set_nx", "incr", "delete", "ping", OTHER})
CACHE_RESULTS = frozenset({"hit", "miss"})
SLACK_METHODS = frozenset({"chat.postMessage", "views.publish", "response_url", "views.open", "assistant.threads.setStatus",
                           "assistant.threads.setTitle", "assistant.threads.setSuggestedPrompts", OTHER})  # fmt: skip
#: feedback on answers: thumbs (up/down), the "Did it fit?" outcome, a number of requests held, a pasted log's kind
FEEDBACK_KINDS = frozenset({"thumbs", "outcome", "held", "log", OTHER})
FEEDBACK_VALUES = frozenset({"up", "down", "fits", "oom", "no_start", "reported", *PASTE_KINDS, OTHER})
#: Web API errors worth telling apart on a dashboard; any other string counts as "other"
SLACK_ERRORS = frozenset({
    "invalid_blocks", "invalid_attachments", "invalid_arguments", "msg_too_long", "msg_blocks_too_long",
    "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited", "not_in_channel",
    "channel_not_found", "is_archived", "invalid_auth", "not_authed", "account_inactive", "token_revoked",
    "missing_scope", "timeout", "http_error", OTHER,
})  # fmt: skip


#: every label name in /metrics and the values it may take
LABEL_VALUES: dict[str, frozenset[str]] = {
    "surface": SURFACES, "outcome": OUTCOMES, "reason": REJECTIONS | RETRY_REASONS, "method": SLACK_METHODS,
    "error": SLACK_ERRORS, "operation": REDIS_OPERATIONS, "result": CACHE_RESULTS,
    "kind": FEEDBACK_KINDS, "value": FEEDBACK_VALUES,
}  # fmt: skip


def label(value: object, allowed: frozenset[str]) -> str:
    """`value` when it is one of `allowed`, otherwise "other": label values never come from a request."""
    return value if isinstance(value, str) and value in allowed else OTHER


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
        self.rejected = Counter(
            "headroom_rejected_requests",
            "HTTP requests refused before Slack's payload was read",
            ["reason"],
            registry=r,
        )

        self.feedback = Counter(
            "headroom_feedback", "Feedback on answers stored, by kind and value", ["kind", "value"], registry=r
        )

    def count(self, surface: str, outcome: str) -> None:
        self.requests.labels(label(surface, SURFACES), label(outcome, OUTCOMES)).inc()

    def feedback_stored(self, kind: str, value: str) -> None:
        self.feedback.labels(label(kind, FEEDBACK_KINDS), label(value, FEEDBACK_VALUES)).inc()

    def slack_error(self, method: str, error: object) -> None:
        self.slack_errors.labels(label(method, SLACK_METHODS), label(error, SLACK_ERRORS)).inc()

    def reject(self, reason: str) -> None:
        self.rejected.labels(label(reason, REJECTIONS)).inc()

    def retry(self, reason: str) -> None:
        self.slack_retries.labels(label(reason, RETRY_REASONS)).inc()

    def redis_error(self, operation: str) -> None:
        self.redis_errors.labels(label(operation, REDIS_OPERATIONS)).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
