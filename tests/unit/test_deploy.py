"""Dockerfile, compose, Kubernetes and Procfile agree with each other and with the app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from starlette.routing import Route

from bot.server import create_app
from bot.settings import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"
COMMAND = ["headroom", "serve"]


def k8s() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def app_routes() -> set[str]:
    app = create_app(Settings(slack_bot_token="xoxb-x", slack_signing_secret="s"))
    return {r.path for r in app.routes if isinstance(r, Route)}


def settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def test_every_surface_starts_the_same_production_command() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd and json.loads(cmd.group(1)) == COMMAND
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["headroom"]["command"] == COMMAND
    container = k8s()[("Deployment", "headroom")]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == COMMAND
    procfile = (DEPLOY.parent / "Procfile").read_text().strip()
    assert procfile == "web: " + " ".join(COMMAND)


def test_dockerfile_is_slim_pinned_non_root_with_a_healthcheck() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases)
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert "/healthz" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert "/healthz" in app_routes()


def test_kubernetes_probes_replicas_and_secrets_agree_with_the_app() -> None:
    docs = k8s()
    deployment = docs[("Deployment", "headroom")]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    routes = app_routes()
    assert deployment["spec"]["replicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics" in routes
    # env names are settings the app reads; secrets come from the documented Secret
    secret = docs[("Secret", "headroom-slack")]
    env = {e["name"]: e for e in container["env"]}
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= set(env) <= settings_env_names()
    for item in env.values():
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "headroom-slack" and ref["key"] in secret["stringData"]
    config = docs[("ConfigMap", "headroom-config")]
    assert set(config["data"]) <= settings_env_names()
    port = int(config["data"]["PORT"])
    assert container["ports"][0]["containerPort"] == port
    assert pod["spec"]["terminationGracePeriodSeconds"] > Settings().shutdown_grace_s
    labels = pod["metadata"]["labels"]
    assert docs[("Service", "headroom")]["spec"]["selector"] == labels
    assert docs[("PodDisruptionBudget", "headroom")]["spec"]["selector"]["matchLabels"] == labels
    hpa = docs[("HorizontalPodAutoscaler", "headroom")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "headroom" and hpa["minReplicas"] >= 2
    redis_service = docs[("Service", "headroom-redis")]
    assert config["data"]["REDIS_URL"].startswith(f"redis://{redis_service['metadata']['name']}:6379")


def test_compose_runs_the_bot_with_its_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot, redis = compose["services"]["headroom"], compose["services"]["redis"]
    assert bot["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert bot["depends_on"]["redis"]["condition"] == "service_healthy" and "healthcheck" in redis
    assert bot["env_file"] == ".env" and (DEPLOY / "env.example").exists()
    example = {
        line.split("=")[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert example <= settings_env_names()
    assert set(bot["environment"]) <= settings_env_names()
