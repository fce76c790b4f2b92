"""Kumo's Python runtime client: runs a `file.function` handler against the
Lambda Runtime API (AWS_LAMBDA_RUNTIME_API). Started by `bootstrap.py`;
kept in a module of its own so that its compiled form can be cached in
`__pycache__` (a script is compiled afresh on every start).

Start-up time is part of every cold start, so this file imports only
modules that are built in or already loaded by the interpreter: HTTP/1.1 is
spoken over a raw `_socket`, JSON goes through the `_json` C accelerator
(falling back to the `json` package only where that is unavailable),
`traceback` is imported only when there is an error to report, and Lambda's
`logging` set-up (`kumo_logging`) only when the function imports `logging`.

The interpreter runs with `-S` (no `site`): `sys.path` is what
`setup_sys_path` makes it, the host's site-packages only on request
(docs/wire-formats.md §2).
"""

import os
import sys
import time
import _socket

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INVOCATION_PATH = "/2018-06-01/runtime/invocation/"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
JSON_CONTENT_TYPE = "application/json"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
RUNTIME_FILE = __file__
# "1" adds the host interpreter's site-packages (e.g. Debian's
# /usr/lib/python3/dist-packages) after the standard library; anything else
# leaves them out. Set by the agent (`python_host_site_packages`), or by the
# function's own environment, which wins.
HOST_SITE_PACKAGES_ENV = "KUMO_PYTHON_HOST_SITE_PACKAGES"


def json_log_format(env):
    """Whether AWS_LAMBDA_LOG_FORMAT asks for JSON log records (any case)."""
    return (env.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


class Invocation(object):
    """The invocation being served, for log records (kumo_logging)."""

    request_id = None
    tenant_id = None


# --- sys.path and Lambda's logging ---------------------------------------------

def layer_paths():
    """Where layers put Python code (docs/wire-formats.md §13), in Lambda's order."""
    if not os.path.isdir("/opt"):
        return []
    return ["/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2], "/opt/python"]


def setup_sys_path(env):
    """sys.path as on Lambda: the package, the layer paths, then what the
    interpreter put there (the runtime directory and PYTHONPATH entries, the
    standard library), each once; the host's site-packages after them only
    when HOST_SITE_PACKAGES_ENV is "1"."""
    front = [env.get("LAMBDA_TASK_ROOT", "/var/task")] + layer_paths()
    seen = set(front)
    rest = []
    for entry in sys.path:
        if entry and entry not in seen:
            seen.add(entry)
            rest.append(entry)
    sys.path[:] = front + rest
    if env.get(HOST_SITE_PACKAGES_ENV) == "1":
        import site
        site.main()
    else:
        # What `site` would add that handlers use: exit() and quit().
        import builtins
        import _sitebuiltins
        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


class _AfterExec(object):
    """A module loader that calls `then(module)` once the module has run."""

    def __init__(self, loader, then):
        self.loader = loader
        self.then = then

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.then(module)


class LoggingHook(object):
    """A `sys.meta_path` finder that waits for the first `import logging`
    (by the function or a library) and gives the root logger Lambda's
    handler as soon as the module has run: functions that never log do not
    pay for importing `logging` at start-up."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _AfterExec(spec.loader, _install_lambda_logging)
                return spec
        return None


def _install_lambda_logging(logging):
    try:
        import kumo_logging
        kumo_logging.install(logging, Invocation, json_log_format(os.environ))
    except Exception as e:
        sys.stderr.write("[kumo bootstrap] setting up logging failed: %s\n" % _safe_str(e))


# --- JSON ------------------------------------------------------------------

class _DecodeContext(object):
    """Settings object the `_json` scanner reads (as json.JSONDecoder has)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


def _not_serializable(o):
    raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)


def _make_json():
    """(loads, dumps) with json.loads/json.dumps semantics."""
    try:
        import _json
        scanner = _json.make_scanner(_DecodeContext())
        encoder = _json.make_encoder(
            None, _not_serializable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
        encoder({"probe": [1, 2.5, None, True, "x"]}, 0)
    except Exception:
        import json
        return json.loads, json.dumps

    whitespace = " \t\n\r"

    def loads(data):
        if isinstance(data, (bytes, bytearray)):
            data = data.decode("utf-8")
        start = len(data) - len(data.lstrip(whitespace))
        try:
            value, end = scanner(data, start)
        except StopIteration as stop:
            raise ValueError("Expecting value: line 1 column %d (char %d)" % (stop.value + 1, stop.value))
        except SystemError:
            # The C scanner builds its error from json.decoder, which it does
            # not import itself: let the json package raise the real error.
            import json
            return json.loads(data)
        rest = data[end:].lstrip(whitespace)
        if rest:
            extra = len(data) - len(rest)
            raise ValueError("Extra data: line 1 column %d (char %d)" % (extra + 1, extra))
        return value

    def dumps(value):
        return "".join(encoder(value, 0))

    return loads, dumps


loads, dumps = _make_json()


# --- HTTP/1.1 client ---------------------------------------------------------

class HttpClient(object):
    """A minimal keep-alive HTTP/1.1 client for the Runtime API."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.host_header = address
        self.target = (host, int(port))
        self.sock = None
        self.buf = bytearray()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = bytearray()

    def _resolve(self):
        host, port = self.target
        for family in (_socket.AF_INET, _socket.AF_INET6):
            try:
                _socket.inet_pton(family, host)
                return family, (host, port)
            except OSError:
                pass
        # A host name. Bytes, because a str host makes getaddrinfo import
        # the idna codec (milliseconds of start-up).
        family, _, _, _, addr = _socket.getaddrinfo(host.encode("ascii"), port, 0, _socket.SOCK_STREAM)[0]
        return family, addr

    def _connect(self):
        family, addr = self._resolve()
        sock = _socket.socket(family, _socket.SOCK_STREAM)
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        sock.connect(addr)
        self.sock = sock

    def request(self, method, path, body=b"", headers=None):
        """Sends one request; returns (status, headers with lowercase names, body)."""
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (
            method, path, self.host_header, len(body))
        if headers:
            for name, value in headers.items():
                head += "%s: %s\r\n" % (name, value)
        data = (head + "\r\n").encode("utf-8") + body
        reused = self.sock is not None
        try:
            if not reused:
                self._connect()
            self.sock.sendall(data)
            return self._read_response()
        except (OSError, EOFError):
            self.close()
            if not reused:
                raise
        # The kept-alive connection was closed under us: retry once afresh.
        self._connect()
        self.sock.sendall(data)
        return self._read_response()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("Runtime API closed the connection")
        self.buf += chunk

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _read_line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            self._fill()

    def _read_response(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        lines = bytes(self.buf[:end]).decode("utf-8", "replace").split("\r\n")
        del self.buf[:end + 4]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self._read_line().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self._read_line():
                        pass
                    break
                parts.append(self._read_exact(size))
                self._read_exact(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body = bytes(self.buf)
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


# --- Handler loading ---------------------------------------------------------

class Fault(Exception):
    """An error with a Lambda error type, reported without a Python traceback."""

    def __init__(self, error_type, message, trace=None):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    if not modname or not fname:
        raise Fault("Runtime.MalformedHandlerName", "Bad handler '%s': empty module or function name" % handler)
    module_path = modname.replace("/", ".")
    if module_path.split(".")[0] in sys.builtin_module_names:
        raise Fault("Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % modname)
    try:
        __import__(module_path)
        module = sys.modules[module_path]
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))


# --- Context -----------------------------------------------------------------

class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]


def _object_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field) if isinstance(values, dict) else None)
    return obj


class LambdaContext(object):
    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, cognito_identity,
                 tenant_id=None):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms
        identity = cognito_identity or {}
        self.identity = CognitoIdentity()
        self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
        self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")
        self.client_context = _object_from_dict(ClientContext, client_context)
        if self.client_context is not None and self.client_context.client is not None:
            self.client_context.client = _object_from_dict(Client, self.client_context.client)

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message):
        sys.stdout.write(str(message))

    def __repr__(self):
        return "LambdaContext(aws_request_id=%r, function_name=%r, function_version=%r)" % (
            self.aws_request_id, self.function_name, self.function_version)


def _header_json(headers, name):
    raw = headers.get(name)
    if not raw:
        return None
    try:
        value = loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- Errors --------------------------------------------------------------------

def _stack_trace(tb):
    import traceback
    frames = [f for f in traceback.extract_tb(tb) if f.filename != RUNTIME_FILE]
    return traceback.format_list(frames)


def _safe_str(value):
    try:
        return str(value)
    except Exception:
        return "<unprintable %s>" % type(value).__name__


def error_document(exc, request_id):
    """(error type, JSON body) for `exc`, printing it to stderr as well."""
    if isinstance(exc, Fault):
        error_type, message, trace = exc.error_type, exc.message, exc.trace
    else:
        error_type, message = type(exc).__name__, _safe_str(exc)
        try:
            trace = _stack_trace(exc.__traceback__)
        except Exception:
            trace = []
    document = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}
    if json_log_format(os.environ):
        # awslambdaric's JSON error record (docs/wire-formats.md §4).
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = dumps(dict([("timestamp", stamp), ("log_level", "ERROR")] + list(document.items()))) + "\n"
    else:
        text = "[ERROR] %s: %s\n" % (error_type, message)
        if trace:
            text += "Traceback (most recent call last):\n" + "".join(trace)
            if not text.endswith("\n"):
                text += "\n"
    sys.stderr.write(text)
    return error_type, dumps(document).encode("utf-8")


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# --- Main loop -------------------------------------------------------------------

def _post(client, path, body, headers):
    _flush()
    status, _, answer = client.request("POST", path, body, headers)
    if status != 202 and status != 413:
        sys.stderr.write("[kumo bootstrap] POST %s answered %d: %s\n" % (path, status, answer.decode("utf-8", "replace")))


def run_invocation(client, handler, status, headers, body):
    request_id = headers.get("lambda-runtime-aws-request-id", "")
    try:
        deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
    except ValueError:
        deadline_ms = 0
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]
    Invocation.request_id = request_id
    Invocation.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
    context = LambdaContext(
        request_id,
        deadline_ms,
        headers.get("lambda-runtime-invoked-function-arn"),
        _header_json(headers, "lambda-runtime-client-context"),
        _header_json(headers, "lambda-runtime-cognito-identity"),
        Invocation.tenant_id,
    )
    try:
        if headers.get("content-type") == JSON_CONTENT_TYPE:
            try:
                event = loads(body)
            except ValueError as e:
                raise Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
        else:
            event = body
        result = handler(event, context)
        try:
            payload = dumps(result).encode("utf-8")
        except Exception as e:
            raise Fault("Runtime.MarshalError", "Unable to marshal response: %s" % _safe_str(e))
    except Exception as e:
        error_type, document = error_document(e, request_id)
        _post(client, INVOCATION_PATH + request_id + "/error", document,
              {ERROR_TYPE_HEADER: error_type, "Content-Type": JSON_CONTENT_TYPE})
        return
    _post(client, INVOCATION_PATH + request_id + "/response", payload, {"Content-Type": JSON_CONTENT_TYPE})


def _await_assignment():
    """A pre-started runtime (KUMO_PREWARMED=1) waits here, interpreter and
    client already loaded, until the agent claims its sandbox for a function:
    the function's whole environment arrives as one JSON object on stdin,
    after /var/task and /tmp have been mounted."""
    chunks = []
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    assignment = loads(b"".join(chunks).decode("utf-8"))
    os.environ.clear()
    os.environ.update(assignment)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # The working directory was the empty mount point; the package is now
    # mounted over it.
    os.chdir(os.environ.get("LAMBDA_TASK_ROOT", "/var/task"))


def main():
    sys.meta_path.insert(0, LoggingHook())
    if os.environ.get("KUMO_PREWARMED") == "1":
        _await_assignment()
    setup_sys_path(os.environ)
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("[kumo bootstrap] AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    client = HttpClient(address)
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except (Exception, SystemExit) as e:
        error_type, document = error_document(e, "")
        _post(client, INIT_ERROR_PATH, document, {ERROR_TYPE_HEADER: error_type, "Content-Type": JSON_CONTENT_TYPE})
        sys.exit(1)
    while True:
        status, headers, body = client.request("GET", NEXT_PATH)
        if status != 200:
            sys.stderr.write("[kumo bootstrap] GET /next answered %d: %s\n" % (status, body.decode("utf-8", "replace")))
            _flush()
            sys.exit(1)
        run_invocation(client, handler, status, headers, body)

