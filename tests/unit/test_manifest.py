"""The Slack manifest declares what the app listens to and the scopes those need."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).parents[2] / "deploy" / "slack" / "manifest.yaml"


def test_manifest_matches_the_app() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "message.channels", "app_home_opened"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "im:history", "channels:history"} <= scopes
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/headroom" and command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] and home["messages_tab_enabled"] and not home["messages_tab_read_only_enabled"]


def test_manifest_enables_the_assistant_panel() -> None:
    """The panel needs its feature, the assistant:write scope (status, title, prompts) and both thread events;
    its messages arrive as DMs, so message.im and im:history stay."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["features"]["assistant_view"]["assistant_description"]
    assert {"assistant:write", "im:history", "chat:write"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= events
