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
- `AWS_LAMBDA_LOG_FORMAT` other than `JSON` is the text format above; the
  JSON format is not implemented (text is used).

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
LEVEL_ENV = "AWS_LAMBDA_LOG_LEVEL"


def level_from_env(value):
    """awslambdaric's reading of AWS_LAMBDA_LOG_LEVEL: "" when unset,
    TRACE as DEBUG, otherwise the value upper-cased."""
    return {None: "", "TRACE": "DEBUG"}.get(value, value).upper()


def install(logging, invocation):
    """Adds Lambda's handler to the root logger of the `logging` module
    given; `invocation.request_id`/`tenant_id` name the current call."""

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
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = level_from_env(os.environ.get(LEVEL_ENV))
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)
