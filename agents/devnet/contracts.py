"""Deploying veritrain's contracts to a devnet, through the project's brownie deployment script.

The deployment runs in a child process (``python -m agents.devnet.contracts``)
so brownie, its compiler adapter and its global state stay out of the agent
processes. It needs a repository checkout (``scripts/``, ``contracts/``,
``make setup`` done): a devnet is a developer's tool.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agents.devnet.anvil import REPO_ROOT, DevnetError

# Deployment parameters of a devnet: short windows so a whole round takes minutes, and the
# examples' number of sampled segments as the minimum. Everything else (forced errors
# included) keeps scripts/deploy.py's defaults.
DEVNET_PARAMETERS: dict[str, int] = {
    "profileWindow": 900,
    # A submitter's agent accepts a sound profile in seconds; one that is not running lets the
    # task open after this review.
    "profileReviewWindow": 30,
    "claimWindow": 900,
    "maxTrainingWindow": 7200,
    "verifierClaimWindow": 900,
    "seedRevealWindow": 900,
    "verifyWindow": 900,
    "challengeWindow": 4,
    "revealWindow": 900,
    "minSampledSegments": 5,
    # The pinpoint game's clocks (``game.*``: GameParameters of scripts/deploy.py): a party
    # that cannot move (a forced error's root) loses its game in minutes, not days.
    "game.clock": 180,
    "game.extension": 30,
}
GAME_PREFIX = "game."


def deploy_contracts(url: str, manifest: Path, parameters: dict[str, int], log: Path) -> None:
    """Deploy to the node at ``url`` and write the manifest to ``manifest``.

    Raises :class:`DevnetError` with the tail of the deployment's output on failure.
    """
    if not (REPO_ROOT / "scripts" / "deploy.py").is_file():
        raise DevnetError(
            f"contract deployment needs the repository checkout ({REPO_ROOT}/scripts/deploy.py)"
        )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SOLCX_BINARY_PATH=str(REPO_ROOT / ".solcx"))
    with open(log, "ab") as out:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "agents.devnet.contracts",
                url,
                str(manifest),
                json.dumps(parameters),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    if done.returncode != 0 or not manifest.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
        raise DevnetError(f"deploying the contracts failed (see {log}):\n{tail}")


@dataclass(frozen=True)
class _Node:
    url: str
    port: int


def main(argv: list[str]) -> int:
    """Child process: ``URL MANIFEST PARAMETERS_JSON``."""
    url, manifest_path, parameters = argv
    sys.path.insert(0, str(REPO_ROOT))
    # Imported by name: scripts/ is the brownie project's, outside this package.
    scripts_deploy = importlib.import_module("scripts.deploy")
    scripts_network = importlib.import_module("scripts.network")
    brownie = importlib.import_module("brownie")

    port = int(url.rsplit(":", 1)[1])
    with scripts_network.attached(_Node(url, port)) as project:
        given = json.loads(parameters)
        game = {k[len(GAME_PREFIX) :]: v for k, v in given.items() if k.startswith(GAME_PREFIX)}
        pool = {k: v for k, v in given.items() if not k.startswith(GAME_PREFIX)}
        defaults = scripts_deploy.ProtocolParameters().as_dict()
        chosen = scripts_deploy.ProtocolParameters(**{**defaults, **pool})
        game_defaults = scripts_deploy.GameParameters().as_dict()
        game_parameters = scripts_deploy.GameParameters(**{**game_defaults, **game})
        deployment = scripts_deploy.deploy(
            project, brownie.accounts[0], chosen, game_parameters=game_parameters
        )
        document = scripts_deploy.manifest(project, deployment, url)
        scripts_deploy.write_manifest(document, Path(manifest_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
