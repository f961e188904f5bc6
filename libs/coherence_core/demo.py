"""`make demo`: load a synthetic organisation into a running Coherence through its REST API.

Start the service with `make run` first. The demo creates an organisation, its unit tree and a
round, pushes a few thousand synthetic responses in batches, closes the round, waits for the
scoring and prints the summary and the weakest ties.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from coherence_core import devstack
from coherence_core.settings import get_settings
from coherence_core.synthetic import generate_organisation, to_api_batches, to_units_payload


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        request = response.request
        sys.exit(f"{request.method} {request.url} → {response.status_code}: {response.text}")
    return response.json() if response.content else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--respondents", type=int, default=3000)
    parser.add_argument("--units", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    settings = get_settings()
    base = f"http://{settings.host}:{settings.port}"
    token = settings.admin_token
    if not token:
        path = devstack.secret_path(settings.state_dir.expanduser().resolve(), "admin-token")
        if not path.exists():
            sys.exit(f"No operator token at {path}: start the service with `make run` first.")
        token = path.read_text().strip()
    org = generate_organisation(n_respondents=args.respondents, n_units=args.units, seed=args.seed)
    with httpx.Client(base_url=base, timeout=120) as http:
        created = _check(
            http.post(
                "/v1/organizations",
                json={"name": f"Demo {time.strftime('%Y-%m-%d %H:%M')}"},
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        http.headers["Authorization"] = f"Bearer {created['api_key']['key']}"
        print(f"organisation {created['id']}; admin key {created['api_key']['key']}")
        _check(http.put("/v1/units", json=to_units_payload(org)))
        round_ = _check(http.post("/v1/rounds", json={"name": "Demo round"}))
        for i, batch in enumerate(to_api_batches(org, batch_size=500)):
            _check(
                http.post(
                    f"/v1/rounds/{round_['id']}/responses",
                    json=batch,
                    headers={"Idempotency-Key": f"demo-{round_['id']}-{i}"},
                )
            )
        _check(http.post(f"/v1/rounds/{round_['id']}/close"))
        print(f"round {round_['id']}: {org.n_respondents} respondents pushed; scoring…")
        for _ in range(240):
            status = _check(http.get(f"/v1/rounds/{round_['id']}"))["scoring"]
            if status["status"] in ("scored", "failed"):
                break
            time.sleep(0.5)
        if status["status"] != "scored":
            sys.exit(f"scoring did not finish: {status}")
        summary = _check(http.get(f"/v1/rounds/{round_['id']}/results/summary"))
        print(json.dumps(summary, indent=2))
        network = _check(http.get(f"/v1/rounds/{round_['id']}/results/network?holes_limit=5"))
        print(
            "weakest ties:",
            [(e["source"], e["target"], round(e["mean"], 2)) for e in network["weakest"]],
        )
        print(f"explore: {base}/docs  (round {round_['id']})")


if __name__ == "__main__":
    main()
