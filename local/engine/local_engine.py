"""The LocalEngine: moto's server on localhost with state-machine execution on and moto's gaps patched."""
import logging
import os
from pathlib import Path

import boto3
import requests
from botocore.config import Config
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from local.engine.patches import apply_moto_patches

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DEMO_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sfn-gateway-local"
APPROVAL_QUEUE_NAME = "sfn-gateway-approvals"
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class LocalEngine:
    """A moto server on localhost that really executes state machines."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = REGION):
        self.host = host
        self.port = port
        # moto keeps one backend per region (taken from each request's signature): the
        # demo workflows, their SQS queue and every client must use this one.
        self.region = region
        self.url = None
        self._server = None
        self._previous_sfn_config = None
        self._previous_moto_port = None
        self.credentials = dict(_CREDENTIALS)

    @classmethod
    def at(cls, url: str, credentials: dict) -> "LocalEngine":
        """Deploy-only handle on a Step Functions endpoint run by someone else (e.g. LocalStack)."""
        engine = cls()
        engine.url = url
        engine.credentials = dict(credentials)
        return engine

    def start(self) -> "LocalEngine":
        """Start the server, patch moto's gaps and switch state-machine execution on."""
        apply_moto_patches()
        # werkzeug logs every request at INFO; moto's ASL evaluator logs every expected
        # state failure (a Fail state, a missing optional path) at ERROR: both drown test output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(
            logging.CRITICAL
        )
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # Task states call AWS services (SQS for approval) through a boto3 client
        # pointed at localhost:$MOTO_PORT (moto/stepfunctions/parser/asl/utils/boto_client.py).
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(port)
        self._previous_sfn_config = dict(default_user_config.get("stepfunctions", {}))
        response = requests.post(
            f"{self.url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=5,
        )
        response.raise_for_status()
        return self

    def stop(self) -> None:
        """Stop the server; executions still waiting (daemon threads) are abandoned."""
        if self._server is None:
            return
        # ThreadedMotoServer.stop() only ends serve_forever(); without server_close() the
        # listening socket stays open and later connections hang instead of being refused.
        self._server.stop()
        self._server._server.server_close()
        self._server = None
        # Both are process-wide: give them back to whoever set them before (another engine,
        # in-process mock_aws users).
        default_user_config["stepfunctions"] = self._previous_sfn_config
        if self._previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_moto_port

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def client(self):
        """Return a boto3 Step Functions client for this engine."""
        # StartSyncExecution is modelled with host prefix "sync-": it must be off locally.
        return boto3.client(
            "stepfunctions",
            endpoint_url=self.url,
            region_name=self.region,
            config=Config(inject_host_prefix=False),
            **self.credentials,
        )

    def deploy_demo_state_machines(self, directory="statemachines") -> dict:
        """Create or update every <name>.asl.json in directory; return {name: {"arn", "type"}}."""
        boto3.client("sqs", endpoint_url=self.url, region_name=self.region, **self.credentials).create_queue(
            QueueName=APPROVAL_QUEUE_NAME
        )
        sfn = self.client()
        deployed = {}
        for path in sorted(Path(directory).glob("*.asl.json")):
            name = path.name[: -len(".asl.json")]
            sm_type = "EXPRESS" if name.endswith("-express") else "STANDARD"
            definition = path.read_text()
            arn = f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{name}"
            try:
                current = sfn.describe_state_machine(stateMachineArn=arn)
            except sfn.exceptions.StateMachineDoesNotExist:
                sfn.create_state_machine(
                    name=name, definition=definition, roleArn=DEMO_ROLE_ARN, type=sm_type
                )
            else:
                if current["definition"] != definition:
                    sfn.update_state_machine(stateMachineArn=arn, definition=definition)
            deployed[name] = {"arn": arn, "type": sm_type}
        return deployed
