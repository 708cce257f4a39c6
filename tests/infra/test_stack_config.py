"""infra/stack_config.py: the GitOps keys (image by digest, in-cluster provisioning,
stack-held credentials) parsed into the typed config, and every mistake named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.stack_config import StackConfigError, parse_stack_config
from tests.infra.harness import generated_credentials, stack_file_config

pytestmark = pytest.mark.unit

DIGEST = "ghcr.io/seamless-stack/seamless-coordinator@sha256:" + "0" * 64


def _prod(**changes: Any) -> dict[str, Any]:
    config = stack_file_config("prod")
    config.update(changes)
    return config


def _secrets(config: dict[str, Any]) -> dict[str, str]:
    return {"credentials": json.dumps(generated_credentials("prod", config))}


def test_shipped_prod_is_the_gitops_configuration() -> None:
    config = _prod()
    parsed = parse_stack_config(config, stack="prod", secrets=_secrets(config))
    assert "@sha256:" in parsed.coordinator_image and not parsed.build_coordinator_image
    assert parsed.object_store.provisioner == "job"
    assert parsed.credential_source == "stack" and parsed.stack_credentials


def test_a_digest_cannot_be_built() -> None:
    config = _prod(coordinatorImage=DIGEST, buildCoordinatorImage=True)
    with pytest.raises(StackConfigError, match="coordinatorImage is a digest"):
        parse_stack_config(config, stack="prod", secrets=_secrets(config))


def test_a_malformed_digest_is_refused() -> None:
    config = _prod(coordinatorImage="ghcr.io/x/coordinator@sha256:abc")
    with pytest.raises(StackConfigError, match=r"coordinatorImage.*@sha256:<64 hex>"):
        parse_stack_config(config, stack="prod", secrets=_secrets(_prod()))


def test_a_tag_is_built_by_default() -> None:
    config = _prod(coordinatorImage="ghcr.io/x/coordinator:0.1.0")
    parsed = parse_stack_config(config, stack="prod", secrets=_secrets(config))
    assert parsed.build_coordinator_image


@pytest.mark.parametrize("given", [False, "false", "False"])
def test_a_tag_is_not_built_when_the_stack_says_so(given: object) -> None:
    # `pulumi config set buildCoordinatorImage false` stores the text "false"
    config = _prod(coordinatorImage="ghcr.io/x/coordinator:0.1.0", buildCoordinatorImage=given)
    parsed = parse_stack_config(config, stack="prod", secrets=_secrets(config))
    assert parsed.build_coordinator_image is False


@pytest.mark.parametrize("key", ["buildCoordinatorImage", "pushCoordinatorImage", "qmtl"])
def test_a_flag_that_is_not_true_or_false_is_refused_naming_it(key: str) -> None:
    config = _prod(**{key: "no"})
    with pytest.raises(StackConfigError, match=rf"{key} is 'no'; expected true or false"):
        parse_stack_config(config, stack="prod", secrets=_secrets(_prod()))


def test_the_provisioning_job_needs_kubernetes() -> None:
    config = stack_file_config("dev")
    config["objectStore"] = {**config["objectStore"], "provisioner": "job"}
    with pytest.raises(StackConfigError, match=r"objectStore\.provisioner is 'job'"):
        parse_stack_config(config, stack="dev")


def test_stack_credentials_must_be_generated_first() -> None:
    with pytest.raises(StackConfigError, match=r"python -m infra.credentials --stack prod"):
        parse_stack_config(_prod(), stack="prod", secrets={})


@pytest.mark.parametrize("text", ["not json", "[]", '{"redis.gateway": ""}', '{"a": 1}'])
def test_stack_credentials_must_be_an_object_of_strings(text: str) -> None:
    with pytest.raises(StackConfigError, match="credentials must be a JSON object"):
        parse_stack_config(_prod(), stack="prod", secrets={"credentials": text})
