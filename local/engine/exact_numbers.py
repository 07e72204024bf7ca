"""JSON numbers through the engine as Step Functions keeps them: exact, and never NaN or Infinity.

moto 5.2.5 parses execution input and task answers with json.loads, so 12345678901234567.89
becomes 1.2345678901234568e+16 and 1e400 becomes inf, which json.dumps then writes as
`Infinity`: not JSON, so the gateway cannot parse the output and hands it on as a string.
Step Functions passes a number that a state does not change through as it was written. Here a
decimal number is parsed as an ExactFloat: a float (so Choice rules, Wait seconds and
intrinsic functions compute with it as before) that remembers its text, which every JSON text
the engine writes (describe, history, sync results) uses. A number a state computes is a new
plain float; one that is not finite is written as null, with a warning, since JSON has no
spelling for it. DescribeExecution also writes a string output as JSON text ("done", quoted), as
AWS does, where moto wrote it bare.
"""
import datetime
import importlib
import json
import logging
import math
import types

from moto.stepfunctions.parser.asl.utils import encoding
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import StepFunctionResponse

from local.engine.parser_backend import executes

LOG = logging.getLogger("sfn_gateway.local.engine")
# moto modules that read or write execution data with the json module directly (intrinsic
# functions, task answers, nested executions, item readers), relative to moto.stepfunctions.parser.asl.component.
_MODULES_USING_JSON = (
    "intrinsic.function.statesfunction.generic.string_format",
    "intrinsic.function.statesfunction.json_manipulation.json_to_string",
    "intrinsic.function.statesfunction.json_manipulation.string_to_json",
    "intrinsic.function.statesfunction.states_function_json_to_string",
    "intrinsic.function.statesfunction.states_function_string_to_json",
    "state.exec.state_task.state_task_activitiy",
    "state.exec.state_task.service.state_task_service_callback",
    "state.exec.state_task.service.state_task_service_sfn",
    "state.exec.state_map.item_reader.eval.resource_output_transformer.transformer_json",
)


class ExactFloat(float):
    """A JSON decimal number: its float value, and the text it was written as."""

    __slots__ = ("text",)

    def __new__(cls, text):
        number = super().__new__(cls, text)
        # copy.deepcopy rebuilds from the float value, then restores the slot.
        number.text = text if isinstance(text, str) else float.__repr__(float(text))
        return number


def loads(text: str):
    """Parse JSON keeping every number's text: decimals as ExactFloat, integers as int (exact already)."""
    return json.loads(text, parse_float=ExactFloat)


def _number_text(value: float) -> str:
    if isinstance(value, ExactFloat):
        return value.text
    if math.isfinite(value):
        return float.__repr__(value)
    LOG.warning("A state computed %r, which JSON cannot hold: written as null.", value)
    return "null"


class ExactEncoder(json.JSONEncoder):
    """moto's encoder (datetimes as ISO text, anything else as str()), writing numbers as above."""

    def encode(self, o) -> str:
        parts: list = []
        self._write(o, parts)
        return "".join(parts)

    def iterencode(self, o, _one_shot=False):
        yield self.encode(o)

    def _string(self, text: str) -> str:
        return json.encoder.encode_basestring_ascii(text) if self.ensure_ascii else json.encoder.encode_basestring(text)

    def _write(self, value, parts: list) -> None:
        if isinstance(value, str):
            parts.append(self._string(value))
        elif value is None or value is True or value is False:
            parts.append({None: "null", True: "true", False: "false"}[value])
        elif isinstance(value, int):
            parts.append(int.__repr__(value))
        elif isinstance(value, float):
            parts.append(_number_text(value))
        elif isinstance(value, dict):
            parts.append("{")
            for index, (key, item) in enumerate(value.items()):
                if index:
                    parts.append(self.item_separator)
                parts.append(self._string(str(key)))
                parts.append(self.key_separator)
                self._write(item, parts)
            parts.append("}")
        elif isinstance(value, (list, tuple)):
            parts.append("[")
            for index, item in enumerate(value):
                if index:
                    parts.append(self.item_separator)
                self._write(item, parts)
            parts.append("]")
        elif isinstance(value, (datetime.date, datetime.datetime)):
            parts.append(self._string(value.isoformat()))
        else:
            parts.append(self._string(str(value)))


def to_json_text(value, separators=None, **options) -> str:
    """JSON text as the engine writes it (what moto's to_json_str now produces)."""
    return json.dumps(value, cls=ExactEncoder, separators=separators, **options)


# The json module as those moto modules see it: the same, but exact.
EXACT_JSON = types.SimpleNamespace(**{
    **{name: getattr(json, name) for name in json.__all__},
    "loads": lambda text, **options: loads(text),
    "load": lambda handle, **options: loads(handle.read()),
    "dumps": to_json_text,
})


def patch_exact_numbers() -> None:
    # Every JSON text moto writes goes through encoding.to_json_str, which looks its encoder
    # class up in its module at each call: one name to replace, whoever imported to_json_str.
    encoding._DateTimeEncoder = ExactEncoder
    for name in _MODULES_USING_JSON:
        importlib.import_module(f"moto.stepfunctions.parser.asl.component.{name}").json = EXACT_JSON
    original_init = Execution.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        # execution_input is the input text as the caller sent it (moto keeps it for its mock).
        self.input_data = loads(self.execution_input)

    Execution.__init__ = __init__
    original_describe = StepFunctionResponse.describe_execution

    def describe_execution(self):
        # moto writes the output with json.dumps, and a string output as it is (not as JSON).
        result = original_describe(self)
        if executes(self) and "output" in result.result:
            execution = self.stepfunction_backend.describe_execution(result.result["executionArn"])
            result.result["output"] = to_json_text(execution.output)
        return result

    StepFunctionResponse.describe_execution = describe_execution
