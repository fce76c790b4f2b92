"""Lambda's `logging` set-up for Kumo's python3 runtime, as AWS's runtime
interface client (awslambdaric) makes it with its standard output sink
(docs/wire-formats.md §4):

- the root logger gets a handler writing each record to stdout as
  `[LEVEL]\t<YYYY-MM-DDTHH:MM:SS.mmm>Z\t<request id>\t<message>` (UTC; the
  request id is empty outside an invocation); a multi-line message keeps its
  lines, the prefix on the first; `logger.exception` adds the traceback;
- `AWS_LAMBDA_LOG_LEVEL` sets the root logger's level (`TRACE` means
  `DEBUG`; an unknown name is ignored); without it the level stays
  Python's default, WARNING, so `logger.setLevel(logging.INFO)` is what
  makes `logger.info` print, as on Lambda;
- `AWS_LAMBDA_LOG_FORMAT=JSON` writes each record as one JSON object
  (`timestamp`, `level`, `message`, `logger`, `requestId`, with `errorType`,
  `errorMessage`, `stackTrace` and `location` for exceptions, `tenantId`
  when set, and the record's `extra` fields), and the level defaults to
  INFO, as Lambda's JSON logging configuration does; any other value is
  the text format above.

One difference, on purpose: a record whose text does not end in a newline
(`logger.exception`'s traceback) gets one, so the next line starts on its
own line (Lambda frames each record; a stream has only newlines).

Imported by `kumo_runtime.LoggingHook` when the function first imports
`logging`, never at start-up.
"""

import os
import sys
import time

FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
LEVEL_ENV = "AWS_LAMBDA_LOG_LEVEL"
# LogRecord attributes that are not `extra` fields of a JSON record.
_RESERVED_FIELDS = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process",
    "aws_request_id", "tenant_id",
}


def level_from_env(value):
    """awslambdaric's reading of AWS_LAMBDA_LOG_LEVEL: "" when unset,
    TRACE as DEBUG, otherwise the value upper-cased."""
    return {None: "", "TRACE": "DEBUG"}.get(value, value).upper()


def install(logging, invocation, as_json):
    """Adds Lambda's handler to the root logger of the `logging` module
    given; `invocation.request_id`/`tenant_id` name the current call;
    `as_json` selects the JSON format (AWS_LAMBDA_LOG_FORMAT=JSON)."""

    class LambdaLoggerHandler(logging.Handler):
        # As awslambdaric's: formatting errors reach the caller.
        def emit(self, record):
            text = self.format(record)
            if not text.endswith("\n"):
                text += "\n"
            sys.stdout.write(text)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = invocation.request_id or ""
            record.tenant_id = invocation.tenant_id
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(_json_formatter(logging) if as_json else logging.Formatter(FORMAT, DATE_FORMAT))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = level_from_env(os.environ.get(LEVEL_ENV, "INFO" if as_json else None))
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


def _json_formatter(logging):
    """awslambdaric's JsonFormatter: one JSON object per record, levels
    rounded down to Python's named ones."""
    import json
    import traceback

    encode = json.JSONEncoder(ensure_ascii=False).encode

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info
            result = {
                "timestamp": self.formatTime(record, JSON_DATE_FORMAT),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno) if exc_info else None,
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_FIELDS and key not in result:
                    result[key] = value
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()
